from otter.test_files import test_case

OK_FORMAT = False

name = "ex-bragg-angle"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(two_theta_200, checks):
    checks.check_bragg_two_theta(two_theta_200)

