"""The Panel/hvPlot admin dashboard (step 4)."""
