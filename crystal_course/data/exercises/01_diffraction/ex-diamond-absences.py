from otter.test_files import test_case

OK_FORMAT = False

name = "ex-diamond-absences"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(diamond_absent, checks):
    checks.check_absent_reflections(diamond_absent, 'diamond')

