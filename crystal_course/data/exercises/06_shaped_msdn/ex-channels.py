from otter.test_files import test_case

OK_FORMAT = False

name = "ex-channels"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(channels, checks):
    checks.check_block_channels(channels, stem_filters=64, growth=32, n_layers=6)

