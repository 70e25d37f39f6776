from otter.test_files import test_case

OK_FORMAT = False

name = "ex-checksum"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(digest, path, checks):
    checks.check_chunk_sha256(digest, path, 'train-00000.npz')

