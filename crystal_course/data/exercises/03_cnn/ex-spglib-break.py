from otter.test_files import test_case

OK_FORMAT = False

name = "ex-spglib-break"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(level, checks, sweeps):
    checks.check_breaking_level(level, sweeps['displacements'], symprec=0.1)

