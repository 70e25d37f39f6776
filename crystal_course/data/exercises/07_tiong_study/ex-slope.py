from otter.test_files import test_case

OK_FORMAT = False

name = "ex-slope"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(slope, checks, card):
    checks.check_learning_slope(slope, card['runs'][0]['history']['val_accuracy'])

