from otter.test_files import test_case

OK_FORMAT = False

name = "ex-matching"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(matched, ex_true, ex_pred, checks):
    checks.check_matching(matched, ex_true, ex_pred)

