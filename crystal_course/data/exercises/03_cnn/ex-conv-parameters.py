from otter.test_files import test_case

OK_FORMAT = False

name = "ex-conv-parameters"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(conv3_parameters, checks):
    checks.check_conv_parameters(conv3_parameters, 'conv3')

