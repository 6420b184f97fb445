"""Shapes of the OTP flow of `/v1` (SPEC §9)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OtpRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cnic: str = Field(max_length=40, examples=["12345-1234567-1"])


class OtpRequestOut(BaseModel):
    request_id: str
    expires_in: int


class OtpVerifyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=12)


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int
