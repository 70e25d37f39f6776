from otter.test_files import test_case

OK_FORMAT = False

name = "ex-kernel-size"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(small_parameters, checks):
    checks.check_kernel_parameters(small_parameters, kernel_size=3)

