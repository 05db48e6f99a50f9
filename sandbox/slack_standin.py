"""A local stand-in for the Slack Web API, response_url hooks and the Socket Mode websocket.

No maintained Slack emulator exists for Python, so tests and `knowlify-slack demo` talk to this
Starlette app instead of slack.com. It keeps just enough state (channels, membership, users,
messages, views) to answer the methods the bot uses the way Slack does, records every call for
assertions, can inject faults (`ok: false`, HTTP 429 + Retry-After), and renders what a Slack user
would see (`transcript()`).

Several workspaces: the default one (`team_id`, `bot_token`) always exists; `add_workspace` adds
more, and `oauth.v2.access` installs the app into any of them, issuing a bot token of its own. Each
token belongs to one team: a call acts in its token's workspace only (its users, its channels), and
every recorded call keeps the token it carried and that token's team (`Call.token`, `Call.team`), so
tests can assert that each workspace's calls used its own token.

All state lives behind one lock; a `threading.Condition` on that lock lets tests block until the
bot has made the calls they expect (`wait_for`) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import copy
import itertools
import json
import re
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

APP_ID = "A0KN0WAPP"
BOT_NAME = "knowlify"

# Fields that slack_sdk sends as JSON strings when a method goes out form-encoded.
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")


@dataclass(frozen=True)
class Call:
    """One recorded request: Web API call, or a Socket Mode ack (`method == "socket.ack"`)."""

    method: str
    args: dict[str, Any]
    response: dict[str, Any]
    at: float
    status: int = 200
    token: str | None = None  # the token the call carried (None for oauth.v2.access)
    team: str | None = None  # the workspace that token belongs to


@dataclass
class _Fault:
    error: str
    status: int
    retry_after: int | None
    remaining: int


@dataclass
class _SocketConn:
    ws: WebSocket
    loop: asyncio.AbstractEventLoop
    send_lock: asyncio.Lock
    connected_at: float = field(default_factory=time.time)


def _ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def _err(error: str, **fields: Any) -> dict[str, Any]:
    return {"ok": False, "error": error, **fields}


class SlackStandIn:
    """Slack Web API + hooks + Socket Mode, in one ASGI app (`.app`); serve it with `ServerThread`."""

    def __init__(
        self,
        *,
        team_id: str = "T0KN0W001",
        team: str = "acme",
        bot_user_id: str = "U0KN0WBOT",
        bot_id: str = "B0KN0WBOT",
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-test-token",
    ) -> None:
        self.team_id = team_id
        self.team = team
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_token = bot_token
        self.app_token = app_token

        # Re-entrant so wait_for predicates may call back into the stand-in (messages(), …).
        self._lock = threading.RLock()
        self._cond = threading.Condition(self._lock)
        self._sockets: list[_SocketConn] = []
        self._pending_acks: dict[str, concurrent.futures.Future[dict[str, Any]]] = {}
        self._refuse_sockets = False
        self._caller_team = team_id  # the team of the call being handled (lock held)
        self.client_id: str | None = None
        self.client_secret: str | None = None
        self.redirect_uri: str | None = None
        self.reset()

        self._handlers: dict[str, Callable[[dict[str, Any], Request], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "conversations.join": self._conversations_join,
            "reactions.add": self._reactions_add,
            "users.info": self._users_info,
            "views.open": self._views_open,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "apps.connections.open": self._apps_connections_open,
            "oauth.v2.access": self._oauth_v2_access,
        }
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api_endpoint, methods=["GET", "POST"]),
                Route("/hooks/{path:path}", self._hook_endpoint, methods=["POST"]),
                Route("/_sandbox/events", self._observe_event_endpoint, methods=["POST"]),
                Route("/_sandbox/commands", self._observe_command_endpoint, methods=["POST"]),
                WebSocketRoute("/link", self._link_endpoint),
            ]
        )

    # ------------------------------------------------------------------ registries

    def reset(self) -> None:
        """Forget all calls, messages, faults and registry changes (open sockets stay connected).

        Lets one served stand-in be reused across tests: uvicorn needs ~0.2 s to stop.
        """
        with self._cond:
            self.calls: list[Call] = []
            self._seq = itertools.count(1)
            self._last_ts_us = 0
            self._channels: dict[str, dict[str, Any]] = {}
            self._users: dict[str, dict[str, Any]] = {}
            self._messages: dict[tuple[str, str], dict[str, Any]] = {}
            self._ephemerals: list[dict[str, Any]] = []
            self._hooks: list[dict[str, Any]] = []
            self._hook_context: dict[str, dict[str, str]] = {}
            self._views: dict[str, dict[str, Any]] = {}
            self._home: dict[str, dict[str, Any]] = {}
            self._faults: dict[str, deque[_Fault]] = {}
            self._latency: dict[str, float] = {}
            self._refuse_sockets = False
            self._workspaces: dict[str, dict[str, str]] = {}
            self._tokens: dict[str, str] = {self.bot_token: self.team_id}
            self._codes: dict[str, dict[str, str]] = {}
            self._cond.notify_all()
        self.add_workspace(self.team_id, self.team, bot_user_id=self.bot_user_id, bot_id=self.bot_id)
        self.add_channel("C0DESIGN1", name="design")
        self.add_user(self.bot_user_id, name=BOT_NAME, is_bot=True)
        self.add_user("U0ADA0001", name="ada")
        self.add_user("U0BOB0002", name="bob")
        self.add_user("U0ADM0003", name="admin", is_admin=True)

    def add_workspace(
        self, team_id: str, team: str, *, bot_user_id: str | None = None, bot_id: str | None = None
    ) -> None:
        """Register another workspace (its bot user exists once the app is installed there)."""
        with self._lock:
            self._workspaces[team_id] = {
                "team_id": team_id,
                "team": team,
                "bot_user_id": bot_user_id or f"U{team_id[1:]}BOT",
                "bot_id": bot_id or f"B{team_id[1:]}BOT",
            }
        self.add_user(self._workspaces[team_id]["bot_user_id"], name=BOT_NAME, is_bot=True, team_id=team_id)

    def workspace(self, team_id: str) -> dict[str, str]:
        with self._lock:
            return dict(self._workspaces[team_id])

    def configure_oauth(self, client_id: str, client_secret: str, redirect_uri: str | None = None) -> None:
        """The app's credentials, which `oauth.v2.access` checks as Slack does."""
        with self._lock:
            self.client_id, self.client_secret, self.redirect_uri = client_id, client_secret, redirect_uri

    def approve(self, team_id: str, user: str, scope: str = "") -> str:
        """What a person clicking "Allow" on slack.com's authorize page produces: a one-time code
        that `oauth.v2.access` exchanges for `team_id`'s bot token."""
        with self._lock:
            if team_id not in self._workspaces:
                raise KeyError(team_id)
            code = f"code-{uuid.uuid4().hex}"
            self._codes[code] = {"team_id": team_id, "user": user, "scope": scope}
            return code

    def tokens_of(self, team_id: str) -> list[str]:
        """The valid bot tokens of a workspace (one, once installed; none after uninstall)."""
        with self._lock:
            return [t for t, team in self._tokens.items() if team == team_id]

    def revoke(self, team_id: str) -> None:
        """Uninstall: every token of the workspace stops working (invalid_auth / token_revoked)."""
        with self._lock:
            for token in [t for t, team in self._tokens.items() if team == team_id]:
                del self._tokens[token]

    def add_channel(
        self,
        channel_id: str,
        *,
        private: bool = False,
        member: bool = True,
        name: str | None = None,
        team_id: str | None = None,
    ) -> None:
        """Register a conversation; `member` says whether the bot is in it (events need membership)."""
        with self._lock:
            self._channels[channel_id] = {
                "team": team_id or self.team_id,
                "id": channel_id,
                "name": name or channel_id.lower(),
                "is_private": private,
                "is_im": channel_id.startswith("D"),
                "is_member": member,
            }

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        team_id: str | None = None,
        is_stranger: bool = False,
    ) -> None:
        """Register a workspace member for `users.info` (admin/owner flags drive revert permission).

        `team_id` of a workspace registered with `add_workspace` makes a member of that workspace,
        whom only that workspace's token can look up. Any other `team_id` makes a Slack Connect
        member of an outside workspace (whose admin flags are about that workspace), visible to
        every token; `is_stranger` is how Slack marks some of them.
        """
        with self._lock:
            self._users[user_id] = {
                "team": team_id or self.team_id,
                "id": user_id,
                "name": name or user_id.lower(),
                "is_admin": is_admin,
                "is_owner": is_owner,
                "is_bot": is_bot,
                "is_stranger": is_stranger,
            }

    def delete_message(self, channel: str, ts: str) -> None:
        """Remove a message, as a user deleting the card would (a later chat.update → message_not_found)."""
        with self._lock:
            self._messages.pop((channel, ts), None)

    # ------------------------------------------------------------------ fault injection

    def inject(
        self,
        method: str,
        *,
        error: str | None = None,
        status: int = 200,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls of `method` fail: `ok: false` with `error`, or HTTP 429."""
        if status == 429:
            error = error or "ratelimited"
            retry_after = 1 if retry_after is None else retry_after
        elif error is None:
            if status == 200:
                raise ValueError("inject() needs an error when status is 200")
            error = "internal_error"
        with self._lock:
            self._faults.setdefault(method, deque()).append(_Fault(error, status, retry_after, times))

    def set_latency(self, method: str, seconds: float) -> None:
        """Answer every call of `method` `seconds` late (a slow Slack), without blocking other calls."""
        with self._lock:
            self._latency[method] = seconds

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault

    # ------------------------------------------------------------------ recorder

    def _record(
        self,
        method: str,
        args: dict[str, Any],
        response: dict[str, Any],
        status: int,
        token: str | None = None,
        team: str | None = None,
    ) -> None:
        """Append a call and wake waiters; caller holds the lock."""
        self.calls.append(
            Call(method, copy.deepcopy(args), copy.deepcopy(response), time.time(), status, token, team)
        )
        self._cond.notify_all()

    def wait_for(
        self,
        predicate: Callable[[Call], bool],
        count: int = 1,
        timeout: float = 10.0,
        *,
        description: str | None = None,
    ) -> list[Call]:
        """Block until at least `count` recorded calls match; return all matches (TimeoutError if not)."""
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(1 for c in self.calls if predicate(c)) >= count, timeout)
            matches = [c for c in self.calls if predicate(c)]
            if not ok:
                seen = Counter(c.method for c in self.calls)
                seen_text = ", ".join(f"{m}×{n}" for m, n in seen.items()) or "none"
                what = description or getattr(predicate, "__name__", repr(predicate))
                raise TimeoutError(
                    f"wait_for({what}, count={count}) timed out after {timeout}s with "
                    f"{len(matches)} match(es); calls seen so far: {seen_text}"
                )
            return matches

    def calls_of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def messages(self, channel: str | None = None, *, include_users: bool = False) -> list[dict[str, Any]]:
        """Current state of bot-posted messages (oldest first), each with its `updates` history.

        Human messages mirrored by the driver are left out unless `include_users`.
        """
        with self._lock:
            out = [
                copy.deepcopy(m)
                for m in self._messages.values()
                if (channel is None or m["channel"] == channel) and (include_users or m["from_bot"])
            ]
        return sorted(out, key=lambda m: (float(m["ts"]), m["seq"]))

    def thread(self, channel: str, thread_ts: str, *, include_users: bool = False) -> list[dict[str, Any]]:
        """Replies (not the parent) in a thread, oldest first."""
        return [
            m
            for m in self.messages(channel, include_users=include_users)
            if m.get("thread_ts") == thread_ts and m["ts"] != thread_ts
        ]

    def ephemerals(self, user: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(e) for e in self._ephemerals if user is None or e["user"] == user]

    def hooks(self) -> list[dict[str, Any]]:
        """response_url posts: `{"path", "body", "channel", "user", "at"}` (channel/user if registered)."""
        with self._lock:
            return [copy.deepcopy(h) for h in self._hooks]

    def wait_for_hook(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """Like `wait_for`, over response_url posts."""
        with self._cond:
            ok = self._cond.wait_for(lambda: sum(1 for h in self._hooks if predicate(h)) >= count, timeout)
            matches = [copy.deepcopy(h) for h in self._hooks if predicate(h)]
            if not ok:
                raise TimeoutError(
                    f"wait_for_hook(count={count}) timed out after {timeout}s with {len(matches)} "
                    f"match(es); {len(self._hooks)} response_url post(s) seen"
                )
            return matches

    def home_view(self, user: str) -> dict[str, Any] | None:
        """The App Home view last published for `user`."""
        with self._lock:
            view = self._home.get(user)
            return copy.deepcopy(view) if view else None

    def views(self) -> dict[str, dict[str, Any]]:
        """Modals opened (and updated) so far, by view id."""
        with self._lock:
            return copy.deepcopy(self._views)

    # ------------------------------------------------------------------ human side (fed by the driver)

    def add_user_message(
        self,
        channel: str,
        ts: str,
        text: str,
        *,
        user: str = "U0ADA0001",
        thread_ts: str | None = None,
        subtype: str | None = None,
    ) -> None:
        """Record a human message so that transcripts show the conversation, not just the bot's half."""
        with self._cond:
            if (channel, ts) in self._messages:
                return
            self._messages[(channel, ts)] = {
                "channel": channel,
                "ts": ts,
                "text": text,
                "blocks": None,
                "thread_ts": thread_ts,
                "user": user,
                "bot_id": None,
                "subtype": subtype,
                "from_bot": False,
                "updates": [],
                "reactions": [],
                "seq": next(self._seq),
            }
            self._cond.notify_all()

    def add_reaction(self, channel: str, ts: str, reaction: str, *, user: str = "U0ADA0001") -> None:
        """Record a human reaction (for the transcript)."""
        with self._cond:
            msg = self._messages.get((channel, ts))
            mark = {"name": reaction, "user": user}
            if msg is not None and mark not in msg["reactions"]:
                msg["reactions"].append(mark)
            self._cond.notify_all()

    def observe_event(self, event: dict[str, Any]) -> None:
        """Mirror what a human did (a plain message or a reaction) from an event sent to the bot."""
        if event.get("type") == "message":
            if event.get("bot_id") or event.get("hidden"):
                return
            if event.get("subtype") not in (None, "file_share", "thread_broadcast"):
                return
            self.add_user_message(
                event.get("channel", ""),
                event.get("ts", ""),
                event.get("text", ""),
                user=event.get("user", ""),
                thread_ts=event.get("thread_ts"),
                subtype=event.get("subtype"),
            )
        elif event.get("type") == "reaction_added":
            item = event.get("item", {})
            self.add_reaction(
                item.get("channel", ""),
                item.get("ts", ""),
                event.get("reaction", ""),
                user=event.get("user", ""),
            )

    def observe_command(self, payload: dict[str, Any]) -> None:
        """Remember whose command a response_url answers, so its posts render as ephemerals to them."""
        if payload.get("response_url"):
            self.register_response_url(
                payload["response_url"],
                channel=payload.get("channel_id", ""),
                user=payload.get("user_id", ""),
            )

    def register_response_url(self, url_or_path: str, *, channel: str, user: str) -> None:
        """Tell the stand-in which channel/user a response_url belongs to (for ephemeral rendering)."""
        path = "/hooks/" + url_or_path.split("/hooks/", 1)[-1]
        with self._lock:
            self._hook_context[path] = {"channel": channel, "user": user}

    # ------------------------------------------------------------------ HTTP endpoints

    @staticmethod
    async def _read_body(request: Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query_params)
        ctype = request.headers.get("content-type", "")
        raw = await request.body()
        if not raw:
            return args
        if ctype.startswith("application/json"):
            body = json.loads(raw)
            if isinstance(body, dict):
                args.update(body)
        else:  # form-encoded; parsed by hand so python-multipart is not needed
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return args

    async def _api_endpoint(self, request: Request) -> Response:
        method = request.path_params["method"]
        args = await self._read_body(request)
        for key in _JSON_FIELDS:
            if isinstance(args.get(key), str) and args[key][:1] in ("[", "{"):
                with contextlib.suppress(ValueError):
                    args[key] = json.loads(args[key])
        token = args.pop("token", None)
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        elif auth.lower().startswith("basic "):  # oauth.v2.access: the app's credentials
            with contextlib.suppress(ValueError):
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
                args.setdefault("client_id", unquote_plus(user))
                args.setdefault("client_secret", unquote_plus(password))

        latency = self._latency.get(method)
        if latency:
            await asyncio.sleep(latency)
        headers: dict[str, str] = {}
        with self._cond:
            status = 200
            handler = self._handlers.get(method)
            team = self._tokens.get(token or "")
            self._caller_team = team or self.team_id
            if handler is None:
                body = _err("unknown_method")
            elif method == "oauth.v2.access":
                body = handler(args, request)
            elif token not in self._tokens and token != self.app_token:
                body = _err("invalid_auth")
            elif (method == "apps.connections.open") != (token == self.app_token):
                body = _err("not_allowed_token_type")
            elif (fault := self._take_fault(method)) is not None:
                status = fault.status
                body = _err(fault.error)
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
            else:
                body = handler(args, request)
            self._record(method, args, body, status, token, team)
        return JSONResponse(body, status_code=status, headers=headers)

    async def _hook_endpoint(self, request: Request) -> Response:
        body = await self._read_body(request)
        if isinstance(body.get("payload"), str):  # form-encoded webhook style
            body = json.loads(body["payload"])
        path = request.url.path
        with self._cond:
            ctx = self._hook_context.get(path, {})
            self._hooks.append(
                {
                    "path": path,
                    "body": body,
                    "channel": ctx.get("channel"),
                    "user": ctx.get("user"),
                    "at": time.time(),
                    "seq": next(self._seq),
                }
            )
            self._cond.notify_all()
        return PlainTextResponse("ok")

    async def _observe_event_endpoint(self, request: Request) -> Response:
        self.observe_event(await request.json())
        return JSONResponse(_ok())

    async def _observe_command_endpoint(self, request: Request) -> Response:
        self.observe_command(await request.json())
        return JSONResponse(_ok())

    # ------------------------------------------------------------------ Web API methods (lock held)

    def _next_ts(self) -> str:
        """A fresh message ts: wall-clock microseconds, strictly increasing."""
        self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _writable_channel(self, channel: str | None) -> tuple[str | None, str | None]:
        """Resolve a channel the bot wants to write to: (channel id, None) or (None, Slack error)."""
        if not channel:
            return None, "channel_not_found"
        if channel.startswith(("U", "W")) and channel in self._users:  # posting to a user = app DM
            dm = "D" + channel[1:]
            if dm not in self._channels:
                self._channels[dm] = {
                    "team": self._users[channel]["team"],
                    "id": dm,
                    "name": f"dm-{self._users[channel]['name']}",
                    "is_private": True,
                    "is_im": True,
                    "is_member": True,
                }
            channel = dm
        ch = self._channels.get(channel)
        if ch is None or ch["team"] != self._caller_team:
            return None, "channel_not_found"
        if not ch["is_member"]:
            return None, "channel_not_found" if ch["is_private"] else "not_in_channel"
        return channel, None

    def _public_message(self, m: dict[str, Any]) -> dict[str, Any]:
        out = {
            "type": "message",
            "user": m["user"],
            "text": m["text"],
            "ts": m["ts"],
            "team": m.get("team", self.team_id),
        }
        if m["from_bot"]:
            out.update(bot_id=m.get("bot_id") or self.bot_id, app_id=APP_ID)
        if m.get("blocks"):
            out["blocks"] = m["blocks"]
        if m.get("thread_ts"):
            out["thread_ts"] = m["thread_ts"]
        return out

    def _ws(self) -> dict[str, str]:
        """The workspace of the call being handled."""
        return self._workspaces[self._caller_team]

    def _auth_test(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        ws = self._ws()
        return _ok(
            url=f"https://{ws['team']}.slack.com/",
            team=ws["team"],
            user=BOT_NAME,
            team_id=ws["team_id"],
            user_id=ws["bot_user_id"],
            bot_id=ws["bot_id"],
            is_enterprise_install=False,
        )

    def _chat_post_message(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        channel, error = self._writable_channel(args.get("channel"))
        if error:
            return _err(error)
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return _err("no_text")
        ts = self._next_ts()
        thread_ts = args.get("thread_ts") or None
        msg: dict[str, Any] = {
            "channel": channel,
            "ts": ts,
            "text": args.get("text") or "",
            "blocks": args.get("blocks"),
            "thread_ts": thread_ts,
            "user": self._ws()["bot_user_id"],
            "bot_id": self._ws()["bot_id"],
            "team": self._caller_team,
            "subtype": None,
            "from_bot": True,
            "updates": [],
            "reactions": [],
            "seq": next(self._seq),
        }
        self._messages[(channel, ts)] = msg  # type: ignore[index]
        return _ok(channel=channel, ts=ts, message=self._public_message(msg))

    def _chat_update(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        channel, error = self._writable_channel(args.get("channel"))
        if error:
            return _err(error)
        msg = self._messages.get((channel, args.get("ts")))  # type: ignore[arg-type]
        if msg is None:
            return _err("message_not_found")
        if not msg["from_bot"]:
            return _err("cant_update_message")
        if "text" in args:
            msg["text"] = args["text"] or ""
        if "blocks" in args:
            msg["blocks"] = args["blocks"]
        msg["updates"].append({"text": msg["text"], "blocks": msg["blocks"], "at": time.time()})
        return _ok(channel=channel, ts=msg["ts"], text=msg["text"], message=self._public_message(msg))

    def _chat_post_ephemeral(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        channel, error = self._writable_channel(args.get("channel"))
        if error:
            return _err(error)
        user = args.get("user")
        if user not in self._users or self._users[user]["team"] != self._caller_team:
            return _err("user_not_found")
        if not args.get("text") and not args.get("blocks") and not args.get("attachments"):
            return _err("no_text")
        ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": channel,
                "user": user,
                "text": args.get("text") or "",
                "blocks": args.get("blocks"),
                "thread_ts": args.get("thread_ts") or None,
                "message_ts": ts,
                "seq": next(self._seq),
            }
        )
        return _ok(message_ts=ts)

    def _conversations_join(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        ch = self._channels.get(args.get("channel") or "")
        if ch is None or ch["team"] != self._caller_team:
            return _err("channel_not_found")
        if ch["is_private"] or ch["is_im"]:
            return _err("method_not_supported_for_channel_type")
        info = {
            "id": ch["id"],
            "name": ch["name"],
            "is_channel": True,
            "is_private": False,
            "is_member": True,
        }
        if ch["is_member"]:
            return _ok(
                channel=info,
                warning="already_in_channel",
                response_metadata={"warnings": ["already_in_channel"]},
            )
        ch["is_member"] = True
        return _ok(channel=info)

    def _reactions_add(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        channel, error = self._writable_channel(args.get("channel"))
        if error:
            return _err(error)
        name, ts = args.get("name"), args.get("timestamp")
        if not name or not ts:
            return _err("invalid_arguments")
        msg = self._messages.get((channel, ts))  # type: ignore[arg-type]
        if msg is not None:
            if any(r["name"] == name and r["user"] == self._ws()["bot_user_id"] for r in msg["reactions"]):
                return _err("already_reacted")
            msg["reactions"].append({"name": name, "user": self._ws()["bot_user_id"]})
        return _ok()

    def _users_info(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        u = self._users.get(args.get("user") or "")
        if u is None or (u["team"] != self._caller_team and u["team"] in self._workspaces):
            return _err("user_not_found")
        extra = {"is_stranger": True} if u.get("is_stranger") else {}
        return _ok(
            user={
                **extra,
                "id": u["id"],
                "team_id": u["team"],
                "name": u["name"],
                "real_name": u["name"].title(),
                "deleted": False,
                "is_admin": u["is_admin"],
                "is_owner": u["is_owner"],
                "is_primary_owner": False,
                "is_bot": u["is_bot"],
                "profile": {"display_name": u["name"], "real_name": u["name"].title()},
            }
        )

    def _store_view(self, view: dict[str, Any], view_id: str | None = None) -> dict[str, Any]:
        stored = copy.deepcopy(view)
        stored.update(
            id=view_id or f"V{uuid.uuid4().hex[:10].upper()}",
            team_id=self._caller_team,
            app_id=APP_ID,
            bot_id=self._ws()["bot_id"],
            hash=f"{time.time():.6f}.{uuid.uuid4().hex[:8]}",
        )
        stored.setdefault("state", {"values": {}})
        stored.setdefault("private_metadata", "")
        stored.setdefault("callback_id", "")
        return stored

    def _views_open(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        view = args.get("view")
        if not args.get("trigger_id") and not args.get("interactivity_pointer"):
            return _err("invalid_arguments")
        if not isinstance(view, dict):
            return _err("invalid_arguments")
        stored = self._store_view(view)
        stored["root_view_id"] = stored["id"]
        self._views[stored["id"]] = stored
        return _ok(view=stored)

    def _views_update(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            return _err("invalid_arguments")
        view_id = args.get("view_id")
        if not view_id and args.get("external_id"):
            view_id = next(
                (v["id"] for v in self._views.values() if v.get("external_id") == args["external_id"]),
                None,
            )
        old = self._views.get(view_id or "")
        if old is None:
            return _err("not_found")
        if args.get("hash") and args["hash"] != old["hash"]:
            return _err("hash_conflict")
        stored = self._store_view(view, old["id"])
        stored["root_view_id"] = old.get("root_view_id", old["id"])
        self._views[old["id"]] = stored
        return _ok(view=stored)

    def _views_publish(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        view, user = args.get("view"), args.get("user_id")
        if not isinstance(view, dict) or not user:
            return _err("invalid_arguments")
        if user not in self._users or self._users[user]["team"] != self._caller_team:
            return _err("user_not_found")
        stored = self._store_view(view)
        self._home[user] = stored
        return _ok(view=stored)

    def _oauth_v2_access(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        """Exchange a one-time code for a bot token, checking the app's credentials as Slack does.
        A reinstall issues a new token and revokes the workspace's old one."""
        if not self.client_id or args.get("client_id") != self.client_id:
            return _err("invalid_client_id")
        if args.get("client_secret") != self.client_secret:
            return _err("bad_client_secret")
        grant = self._codes.pop(args.get("code") or "", None)
        if grant is None:
            return _err("invalid_code")
        if self.redirect_uri and args.get("redirect_uri") not in (None, "", self.redirect_uri):
            return _err("bad_redirect_uri")
        team_id = grant["team_id"]
        ws = self._workspaces[team_id]
        for old in [t for t, team in self._tokens.items() if team == team_id]:
            del self._tokens[old]
        token = f"xoxb-{team_id}-{uuid.uuid4().hex}"
        self._tokens[token] = team_id
        return _ok(
            access_token=token,
            token_type="bot",
            scope=grant["scope"],
            bot_user_id=ws["bot_user_id"],
            app_id=APP_ID,
            team={"id": team_id, "name": ws["team"]},
            enterprise=None,
            is_enterprise_install=False,
            authed_user={"id": grant["user"]},
        )

    def _apps_connections_open(self, args: dict[str, Any], request: Request) -> dict[str, Any]:
        host = request.headers.get("host") or f"127.0.0.1:{request.url.port}"
        return _ok(url=f"ws://{host}/link")

    # ------------------------------------------------------------------ Socket Mode

    async def _link_endpoint(self, ws: WebSocket) -> None:
        with self._lock:
            refuse = self._refuse_sockets
        if refuse:
            await ws.close(code=1008)
            return
        await ws.accept()
        conn = _SocketConn(ws=ws, loop=asyncio.get_running_loop(), send_lock=asyncio.Lock())
        with self._cond:
            self._sockets.append(conn)
            n = len(self._sockets)
            self._cond.notify_all()
        try:
            hello = {
                "type": "hello",
                "num_connections": n,
                "debug_info": {
                    "host": "applink-standin",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": APP_ID},
            }
            async with conn.send_lock:
                await ws.send_text(json.dumps(hello))
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None and message.get("bytes") is not None:
                    text = message["bytes"].decode("utf-8")
                if text:
                    self._on_socket_message(text)
        except Exception:  # a dropped connection is normal here; state is cleaned up below
            pass
        finally:
            with self._cond:
                if conn in self._sockets:
                    self._sockets.remove(conn)
                self._cond.notify_all()

    def _on_socket_message(self, text: str) -> None:
        try:
            msg = json.loads(text)
        except ValueError:
            return
        if not isinstance(msg, dict) or "envelope_id" not in msg:
            return
        with self._cond:
            fut = self._pending_acks.get(msg["envelope_id"])
            self._record("socket.ack", msg, {}, 200)
        if fut is not None and not fut.done():
            fut.set_result(msg)

    def socket_connected(self) -> bool:
        with self._lock:
            return bool(self._sockets)

    def wait_connected(self, timeout: float = 10.0) -> None:
        """Block until a Socket Mode client holds the websocket open."""
        with self._cond:
            if not self._cond.wait_for(lambda: bool(self._sockets), timeout):
                raise TimeoutError(f"no Socket Mode client connected within {timeout}s")

    def wait_disconnected(self, timeout: float = 10.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: not self._sockets, timeout):
                raise TimeoutError(f"Socket Mode client still connected after {timeout}s")

    def _current_socket(self) -> _SocketConn:
        with self._lock:
            if not self._sockets:
                raise RuntimeError("no Socket Mode client is connected")
            return self._sockets[-1]

    def _send_on(self, conn: _SocketConn, data: dict[str, Any], timeout: float) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is conn.loop:
            raise RuntimeError("call the stand-in's socket methods from a thread, not its event loop")

        async def _send() -> None:
            async with conn.send_lock:
                await conn.ws.send_text(json.dumps(data))

        asyncio.run_coroutine_threadsafe(_send(), conn.loop).result(timeout)

    def send_envelope(
        self,
        type_: str,
        payload: dict[str, Any],
        *,
        timeout: float = 10.0,
        retry_attempt: int = 0,
        retry_reason: str = "",
        accepts_response_payload: bool | None = None,
    ) -> dict[str, Any]:
        """Deliver one envelope to the connected client and return its ack (TimeoutError if none).

        Bolt sends no ack when dispatch fails (e.g. an unhandled request), so a TimeoutError here
        is what Slack would see as a failed delivery.
        """
        if accepts_response_payload is None:
            accepts_response_payload = type_ == "slash_commands" or (
                type_ == "interactive" and payload.get("type") in ("view_submission", "block_suggestion")
            )
        envelope: dict[str, Any] = {
            "envelope_id": str(uuid.uuid4()),
            "type": type_,
            "accepts_response_payload": accepts_response_payload,
            "payload": payload,
        }
        if type_ == "events_api":  # Slack adds these to Events API envelopes only
            envelope["retry_attempt"] = retry_attempt
            envelope["retry_reason"] = retry_reason
        if type_ == "slash_commands":
            self.observe_command(payload)
        elif type_ == "events_api" and isinstance(payload.get("event"), dict):
            self.observe_event(payload["event"])
        fut: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        conn = self._current_socket()
        with self._lock:
            self._pending_acks[envelope["envelope_id"]] = fut
        deadline = time.monotonic() + timeout
        try:
            self._send_on(conn, envelope, timeout)
            return fut.result(max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"no ack for {type_} envelope {envelope['envelope_id']} within {timeout}s"
            ) from None
        finally:
            with self._lock:
                self._pending_acks.pop(envelope["envelope_id"], None)

    def send_disconnect(self, reason: str = "refresh_requested", timeout: float = 5.0) -> None:
        """Send Slack's `disconnect` message; clients answer by reconnecting via apps.connections.open."""
        self._send_on(self._current_socket(), {"type": "disconnect", "reason": reason}, timeout)

    def disconnect_socket(self, *, refuse_reconnect: bool = False, timeout: float = 5.0) -> None:
        """Close every Socket Mode connection (to exercise health checks and reconnects).

        With `refuse_reconnect`, new websocket handshakes are rejected until `allow_reconnect()`.
        """
        with self._lock:
            self._refuse_sockets = refuse_reconnect or self._refuse_sockets
            conns = list(self._sockets)
        for conn in conns:

            async def _close(c: _SocketConn = conn) -> None:
                async with c.send_lock:
                    await c.ws.close(code=1001)

            with contextlib.suppress(Exception):  # already gone
                asyncio.run_coroutine_threadsafe(_close(), conn.loop).result(timeout)
        with self._cond:
            self._cond.wait_for(lambda: not any(c in self._sockets for c in conns), timeout)

    def allow_reconnect(self) -> None:
        with self._lock:
            self._refuse_sockets = False

    # ------------------------------------------------------------------ transcript

    def _name(self, user: str | None) -> str:
        if user is None:
            return "someone"
        u = self._users.get(user)
        return u["name"] if u else user

    def _render_text(self, text: str) -> str:
        def sub(m: re.Match[str]) -> str:
            inner = m.group(1)
            target, _, label = inner.partition("|")
            if target.startswith("@"):
                return "@" + (label or self._name(target[1:]))
            if target.startswith("#"):
                ch = self._channels.get(target[1:])
                return "#" + (label or (ch["name"] if ch else target[1:]))
            if target.startswith("!"):
                return "@" + (label or target[1:].split("^")[0])
            if target.startswith(("http://", "https://", "mailto:")):
                return f"{label} ({target})" if label else target
            return m.group(0)

        out = re.sub(r"<([^<>]+)>", sub, text)
        return out.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def _render_blocks(self, blocks: list[dict[str, Any]] | None) -> str:
        lines: list[str] = []
        for b in blocks or []:
            kind = b.get("type")
            if kind in ("header", "section") and isinstance(b.get("text"), dict):
                lines.append(b["text"].get("text", ""))
            if kind == "section" and b.get("fields"):
                lines.append(" · ".join(f.get("text", "") for f in b["fields"]))
            elif kind == "context":
                lines.append(" · ".join(e.get("text", "") for e in b.get("elements", []) if "text" in e))
            elif kind == "actions":
                labels = [e.get("text", {}).get("text", "") for e in b.get("elements", [])]
                lines.append(" ".join(f"[{label}]" for label in labels if label))
            elif kind == "image":
                lines.append(f"[image: {b.get('alt_text', '')}]")
        return "\n".join(line for line in lines if line)

    def _render_item(self, item: dict[str, Any], indent: str) -> list[str]:
        text = item.get("text") or self._render_blocks(item.get("blocks"))
        body = self._render_text(text).splitlines() or [""]
        prefix = f"{indent}{item['_who']}: "
        lines = [prefix + body[0]] + [" " * len(prefix) + line for line in body[1:]]
        if item.get("reactions"):
            marks = ", ".join(f":{r['name']}: @{self._name(r['user'])}" for r in item["reactions"])
            lines.append(" " * len(prefix) + f"[{marks}]")
        return lines

    def transcript(self) -> str:
        """What a Slack user would see: per channel, top-level messages with replies indented under them."""
        with self._lock:
            items: list[dict[str, Any]] = []
            for m in self._messages.values():
                items.append({**m, "_who": f"@{self._name(m['user'])}"})
            for e in self._ephemerals:
                items.append(
                    {
                        **e,
                        "ts": e["message_ts"],
                        "_who": f"(only visible to @{self._name(e['user'])}) @{BOT_NAME}",
                    }
                )
            loose_hooks: list[dict[str, Any]] = []
            for h in self._hooks:
                body = h["body"]
                public = body.get("response_type") == "in_channel"
                who = f"@{BOT_NAME}" if public else f"(only visible to @{self._name(h['user'])}) @{BOT_NAME}"
                item = {
                    "channel": h["channel"],
                    "seq": h["seq"],
                    "text": body.get("text", ""),
                    "blocks": body.get("blocks"),
                    "thread_ts": body.get("thread_ts"),
                    "_who": who,
                }
                (items if h["channel"] else loose_hooks).append(item)
            channel_order = list(self._channels)
            out: list[str] = []
            for ch_id in channel_order + sorted({i["channel"] for i in items} - set(channel_order)):
                ch_items = sorted((i for i in items if i["channel"] == ch_id), key=lambda i: i["seq"])
                if not ch_items:
                    continue
                ch = self._channels.get(ch_id)
                out.append(f"#{ch['name'] if ch else ch_id} ({ch_id})")
                parents = {i["ts"] for i in ch_items if "ts" in i and i.get("thread_ts") in (None, i["ts"])}
                replies: dict[str, list[dict[str, Any]]] = {}
                for i in ch_items:
                    t = i.get("thread_ts")
                    if t and t != i.get("ts"):
                        replies.setdefault(t, []).append(i)
                for i in ch_items:
                    t = i.get("thread_ts")
                    if t and t != i.get("ts"):
                        continue
                    out.extend(self._render_item(i, "  "))
                    for r in replies.get(i.get("ts", ""), []):
                        out.extend(self._render_item(r, "      ↳ "))
                for t, rs in replies.items():
                    if t not in parents:
                        out.append(f"  (thread {t}, parent not seen)")
                        for r in rs:
                            out.extend(self._render_item(r, "      ↳ "))
                out.append("")
            if loose_hooks:
                out.append("response_url posts (channel unknown)")
                for h in loose_hooks:
                    out.extend(self._render_item(h, "  "))
                out.append("")
        return "\n".join(out).rstrip() + "\n" if out else ""
