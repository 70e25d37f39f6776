from otter.test_files import test_case

OK_FORMAT = False

name = "ex-single-vacancy"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(group, checks):
    checks.check_single_vacancy_group(group)

