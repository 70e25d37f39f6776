from otter.test_files import test_case

OK_FORMAT = False

name = "ex-receptive-field"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(field, checks):
    checks.check_receptive_field(field, 'conv6')

