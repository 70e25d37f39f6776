from otter.test_files import test_case

OK_FORMAT = False

name = "ex-seed-interval"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(seed_interval, checks):
    checks.check_seed_interval(seed_interval)

