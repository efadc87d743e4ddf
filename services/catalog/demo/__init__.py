"""The demo catalogue of Luoding (罗定市): departments, service points, life events, lists and items."""
