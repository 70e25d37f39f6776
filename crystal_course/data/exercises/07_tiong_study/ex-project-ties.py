from otter.test_files import test_case

OK_FORMAT = False

name = "ex-project-ties"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(tied_pair, tied_variant, tie, checks):
    checks.check_tied_methods(tied_pair, tied_variant, tie)

