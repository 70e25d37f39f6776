from otter.test_files import test_case

OK_FORMAT = False

name = "ex-longer-training"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(longer_accuracy, longer, x_turned, y_orient, checks):
    checks.check_model_accuracy(longer_accuracy, longer, x_turned, y_orient)

