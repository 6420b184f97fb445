from tests.conftest import ELIGIBLE_PHONE, ELIGIBLE_WIFE


async def test_smoke(dial, registry):
    phone = dial(ELIGIBLE_PHONE)
    print(await phone.dial())
    print(await phone.send("1"))
    print(await phone.send("1"))
    print(await phone.send(ELIGIBLE_WIFE))
    print(await phone.dial())
    print(await phone.send("2"))
    print(await phone.send("2"))
    print(await phone.dial())
    print(await phone.send("3"))
    print(await phone.send("2"))
    print(await phone.send("2"))
    print(await phone.send("1"))
    print(await phone.dial())
    print(await phone.send("4"))
    print(await phone.send("2"))
    print(await phone.send("2"))
