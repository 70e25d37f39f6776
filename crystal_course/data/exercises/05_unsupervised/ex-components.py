from otter.test_files import test_case

OK_FORMAT = False

name = "ex-components"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(n90, ratio, checks):
    checks.check_components(n90, ratio, 0.9)

