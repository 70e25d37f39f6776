from otter.test_files import test_case

OK_FORMAT = False

name = "ex-ewald-ratio"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(ratio, checks):
    checks.check_ewald_ratio(ratio)

