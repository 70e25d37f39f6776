from otter.test_files import test_case

OK_FORMAT = False

name = "ex-project-zone-axis"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(view_rotation, view_uvw, checks):
    checks.check_zone_axis_view(view_rotation, view_uvw)

