from otter.test_files import test_case

OK_FORMAT = False

name = "ex-auroc-pairs"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(auroc_pairs, checks):
    checks.check_unknown_auroc(auroc_pairs)

