
# The key that databases the benchmarks seed and keep (bench.dashboard's, reused by bench.reads) are sealed
# with, so every benchmark that serves or reads one opens it. Not a secret: nothing personal is in them.
SEEDED_SECRET_KEY = "tutor-quality-benchmark-databases-only-0001"
