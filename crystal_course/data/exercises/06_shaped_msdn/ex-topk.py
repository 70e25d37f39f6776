from otter.test_files import test_case

OK_FORMAT = False

name = "ex-topk"
points = 1
all_or_nothing = True

@test_case(points=None, hidden=False)
def test_checker(top3, checks, runs, biggest):
    checks.check_top_k(top3, runs[biggest, 'cnn'].probabilities['test_pristine'], runs[biggest, 'cnn'].y['test_pristine'], k=3)

