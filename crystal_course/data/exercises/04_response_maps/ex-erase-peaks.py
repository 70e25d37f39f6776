from otter.test_files import test_case

OK_FORMAT = False

name = "ex-erase-peaks"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(probability, checks):
    checks.check_erased_probability(probability)

