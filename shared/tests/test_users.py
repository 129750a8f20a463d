import asyncio
import uuid

import httpx
import msgspec

from flashbid_shared.contracts import UserLookup, UserSummaries, UserSummary
from flashbid_shared.users import UserDirectory


def test_users_asked_for_during_a_lookup_go_together_in_the_next_one() -> None:
    asked: list[list[uuid.UUID]] = []
    first_out = asyncio.Event()
    release = asyncio.Event()

    async def auth(request: httpx.Request) -> httpx.Response:
        """auth's lookup route, as a fake: holds its first answer until released."""
        ids = msgspec.json.decode(request.content, type=UserLookup).ids
        asked.append(ids)
        if len(asked) == 1:
            first_out.set()
            await release.wait()
        found = [UserSummary(id=i, display_name=f"u{i.hex[:4]}", weight=1.0,
                             email_verified=True, is_active=True) for i in ids]  # fmt: skip
        return httpx.Response(200, content=msgspec.json.encode(UserSummaries(users=found)))

    async def run():
        async with httpx.AsyncClient(transport=httpx.MockTransport(auth)) as http:
            users = UserDirectory(http, "http://auth")
            people = [uuid.uuid4() for _ in range(51)]
            first = asyncio.ensure_future(users.get(people[0]))
            await first_out.wait()  # the first lookup is out
            meanwhile = []
            for person in [*people[1:], people[1]]:  # arriving over 50 ms
                meanwhile.append(asyncio.ensure_future(users.get(person)))
                await asyncio.sleep(0.001)
            release.set()
            answers = await asyncio.gather(first, *meanwhile)
            again = await users.get(people[7])  # cached: no lookup
            return people, answers, again

    people, answers, again = asyncio.run(run())
    assert [len(ids) for ids in asked] == [1, 50]  # one lookup out, then all the others at once
    assert [a.id for a in answers] == [*people, people[1]]
    assert again is not None and again.id == people[7]
