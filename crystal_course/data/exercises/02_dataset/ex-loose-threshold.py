from otter.test_files import test_case

OK_FORMAT = False

name = "ex-loose-threshold"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(threshold, checks):
    checks.check_loose_threshold(threshold)

