from otter.test_files import test_case

OK_FORMAT = False

name = "ex-dominant-filter"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(dominant, checks):
    checks.check_dominant_filter(dominant, 'conv1')

