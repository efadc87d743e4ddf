"""Catalog: Public-service items (事项) with their service guides, versions, flowcharts and search; departments and service points."""
