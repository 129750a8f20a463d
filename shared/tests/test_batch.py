import asyncio

from flashbid_shared.batch import Batcher


def test_the_batcher_writes_concurrent_items_together_once_per_key() -> None:
    batches: list[list[tuple[str, int]]] = []

    async def write(items):
        batches.append(items)
        return [value * 10 for _, value in items]

    async def run():
        batcher = Batcher(write, key=lambda item: item[0])
        items = [("a", 1), ("b", 2), ("a", 3), ("c", 4)]
        answers = await asyncio.gather(*(batcher.submit(item) for item in items))
        await batcher.close()
        return answers

    results = asyncio.run(run())
    assert results == [10, 20, 30, 40]
    assert all(len({k for k, _ in batch}) == len(batch) for batch in batches)
    assert len(batches) == 2  # "a" twice cannot share a statement


def test_an_item_answered_with_an_exception_raises_it_and_only_it() -> None:
    async def write(items):
        return [ValueError(f"no {n}") if n % 2 else n for n in items]

    async def run():
        batcher = Batcher(write, key=lambda n: n)
        answers = await asyncio.gather(
            *(batcher.submit(n) for n in range(4)), return_exceptions=True
        )
        await batcher.close()
        return answers

    answers = asyncio.run(run())
    assert answers[0] == 0 and answers[2] == 2
    assert [(type(a), str(a)) for a in answers[1::2]] == [
        (ValueError, "no 1"),
        (ValueError, "no 3"),
    ]


def test_closing_writes_and_answers_everything_submitted_first() -> None:
    written: list[int] = []

    async def write(items):
        await asyncio.sleep(0.01)  # a write in flight when close is called
        written.extend(items)
        return items

    async def run():
        batcher = Batcher(write, key=lambda n: n)
        submitted = [asyncio.ensure_future(batcher.submit(n)) for n in range(3)]
        await asyncio.sleep(0.001)  # 0..2 are being written
        submitted += [asyncio.ensure_future(batcher.submit(n)) for n in range(3, 6)]
        await asyncio.sleep(0)
        await batcher.close()
        return [future.result() for future in submitted]  # all answered once closed

    assert asyncio.run(run()) == list(range(6))
    assert sorted(written) == list(range(6))
