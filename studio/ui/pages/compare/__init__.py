"""The Compare page: several methods on the same model, data and step budget, side by side."""
