from otter.test_files import test_case

OK_FORMAT = False

name = "ex-lines"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(n_lines, square_nodes, checks):
    checks.check_line_count(n_lines, square_nodes, factor=1.7)

