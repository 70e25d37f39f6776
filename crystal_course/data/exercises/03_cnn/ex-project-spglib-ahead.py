from otter.test_files import test_case

OK_FORMAT = False

name = "ex-project-spglib-ahead"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(ahead_level, ahead_tests, checks):
    checks.check_spglib_ahead(ahead_level, ahead_tests)

