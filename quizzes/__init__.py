"""The question bank, its loader and validator, paper assembly and scoring."""
