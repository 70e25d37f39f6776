from otter.test_files import test_case

OK_FORMAT = False

name = "ex-shaping-sweep"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(best_setting, checks, test):
    checks.check_shaping_sweep(best_setting, test.meta['spots'], test.meta['space_group'])

