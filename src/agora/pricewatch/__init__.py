"""Price watch: competitors' product pages crawled, their prices kept, undercuts reported."""
