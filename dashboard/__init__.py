"""The Panel/hvPlot admin dashboard: who is at risk, why, and what to do."""
