from otter.test_files import test_case

OK_FORMAT = False

name = "ex-a7-a10"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(a7_a10, detector, checks):
    checks.check_a7_a10(a7_a10, detector)

