"""Analysis stage: find autograd Functions and read their forward and backward into a Plan."""
