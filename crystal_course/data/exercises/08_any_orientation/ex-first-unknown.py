from otter.test_files import test_case

OK_FORMAT = False

name = "ex-first-unknown"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(first_unknown, vacancy_levels, checks):
    checks.check_first_unknown(first_unknown, vacancy_levels)

