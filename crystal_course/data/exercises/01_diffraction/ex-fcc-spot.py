from otter.test_files import test_case

OK_FORMAT = False

name = "ex-fcc-spot"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(fcc_radius, checks, np):
    checks.check_spot_radius(fcc_radius, d_spacing=np.sqrt(2) / np.sqrt(3))

