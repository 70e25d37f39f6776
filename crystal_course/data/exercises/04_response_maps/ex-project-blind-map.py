from otter.test_files import test_case

OK_FORMAT = False

name = "ex-project-blind-map"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(response, checks):
    checks.check_blind_map(response)

