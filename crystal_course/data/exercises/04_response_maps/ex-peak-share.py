from otter.test_files import test_case

OK_FORMAT = False

name = "ex-peak-share"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(share, checks):
    checks.check_peak_share(share)

