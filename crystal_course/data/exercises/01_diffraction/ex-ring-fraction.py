from otter.test_files import test_case

OK_FORMAT = False

name = "ex-ring-fraction"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(kept, checks):
    checks.check_ring_fraction(kept)

