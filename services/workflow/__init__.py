"""Workflow: Process instances and department tasks; parallel approval (并联审批) by events and signed webhooks; corrections (补正); decisions."""
