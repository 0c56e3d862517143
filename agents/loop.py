"""The agent loop: observe, think (only with a scratchpad), act, parse, re-ask on bad output.

A LangGraph graph over one context. It is compiled once per `AgentLoop` (inside the actor that
owns it: a compiled graph does not pickle) and invoked once per context; its state lives only for
that invocation, so nothing carries from one context to the next.

Observing is the graph's input: `run` builds the state a context starts from (its messages, no
calls yet), and the context's shape picks the graph, one with a `think` node for a context that
grants a scratchpad and one without. A node of its own for that (the loop's first version) cost a
LangGraph step per context, about a fifth of the loop's time on an in-process backend, to
make a choice the context already holds. `parse`, the one branch inside a graph, routes by
returning a `Command` rather than through a conditional edge: the same nodes, edges and steps,
without the separately traced router a conditional edge runs after its node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from agents.backends.base import Backend, BackendError, CompletionParams
from agents.parsing import answer_schema, parse_answer
from sandbox.core.context import Action, ChoiceAnswer, Context, Message, Usage
from sandbox.core.seeding import derive_seed


class LoopState(TypedDict, total=False):
    context: Context
    messages: list[Message]
    scratchpad: str
    visible: str
    answer: str | float | None
    attempts: int
    calls: int
    usage: Usage
    retries: int
    structured: str


BackendFor = Callable[[str], Backend]
"""Returns the backend serving a model name (built lazily and kept by the caller)."""


class AgentLoop:
    """Runs contexts through the compiled graph. `max_reasks` bounds the re-asks per context."""

    def __init__(self, backend_for: BackendFor, max_reasks: int = 2) -> None:
        if max_reasks < 0:
            raise ValueError("max_reasks must be >= 0")
        self._backend_for = backend_for
        self.max_reasks = max_reasks
        self._graphs = {thinks: self._build(thinks) for thinks in (False, True)}

    def _build(self, thinks: bool) -> Any:
        """START -> (think ->) act -> parse -> act again or END."""
        graph = StateGraph(LoopState)
        graph.add_node("act", self._act)
        graph.add_node("parse", self._parse, destinations=("act", END))
        if thinks:
            graph.add_node("think", self._think)
            graph.add_edge(START, "think")
            graph.add_edge("think", "act")
        else:
            graph.add_edge(START, "act")
        graph.add_edge("act", "parse")
        return graph.compile()

    async def _call(
        self, state: LoopState, messages: list[Message], answering: bool = False
    ) -> tuple[str, LoopState]:
        """One model call; `answering` (the act step) passes the answer's JSON schema, for a
        backend with structured output (a scratchpad step is free text)."""
        ctx = state["context"]
        calls = state.get("calls", 0)
        params = CompletionParams(
            seed=derive_seed(ctx.seed, calls),
            answer_schema=answer_schema(ctx.answer) if answering else None,
        )
        try:
            completion = await self._backend_for(ctx.model).complete(messages, params)
        except BackendError as exc:
            # the context's error outcome keeps what its earlier calls used and retried
            raise BackendError(
                str(exc),
                retries=state.get("retries", 0) + exc.retries,
                usage=state.get("usage", Usage()) + exc.usage,
            ) from None
        usage = state.get("usage", Usage()) + completion.usage
        update: LoopState = {
            "calls": calls + 1,
            "usage": usage,
            "retries": state.get("retries", 0) + completion.retries,
        }
        if completion.structured is not None:
            update["structured"] = completion.structured
        return completion.text, update

    @staticmethod
    def _observe(ctx: Context) -> LoopState:
        """The state a context starts from: what it shows, nothing asked yet."""
        return {
            "context": ctx,
            "messages": list(ctx.messages),
            "attempts": 0,
            "calls": 0,
            "usage": Usage(),
            "scratchpad": "",
        }

    async def _think(self, state: LoopState) -> LoopState:
        ctx = state["context"]
        assert ctx.think_prompt is not None
        asked = [*state["messages"], Message(role="user", content=ctx.think_prompt)]
        text, update = await self._call(state, asked)
        after = [Message(role="assistant", content=text)]
        if ctx.after_think_prompt:
            after.append(Message(role="user", content=ctx.after_think_prompt))
        return {**update, "scratchpad": text, "messages": [*asked, *after]}

    async def _act(self, state: LoopState) -> LoopState:
        text, update = await self._call(state, state["messages"], answering=True)
        return {**update, "visible": text, "attempts": state.get("attempts", 0) + 1}

    async def _parse(self, state: LoopState) -> Command[str]:
        """Done on a valid answer, when re-asks run out, or when the context has no re-ask text;
        otherwise re-ask and act again."""
        ctx = state["context"]
        answer = parse_answer(state["visible"], ctx.answer)
        update: LoopState = {"answer": answer}
        if answer is None and ctx.reask_prompt and state["attempts"] <= self.max_reasks:
            update["messages"] = [
                *state["messages"],
                Message(role="assistant", content=state["visible"]),
                Message(role="user", content=ctx.reask_prompt),
            ]
            return Command(update=update, goto="act")
        return Command(update=update, goto=END)

    async def run(self, context: Context) -> Action:
        """One context to one action. Malformed output never raises: it is a parse failure; a
        backend that still fails after its own retries is the context's error outcome."""
        try:
            # v2: the final values alone (v1 also streams every step's updates, to find
            # interrupts, which this graph has none of)
            graph = self._graphs[bool(context.think_prompt)]
            output = await graph.ainvoke(self._observe(context), version="v2")
            final: LoopState = output.value
        except BackendError as exc:
            return Action(
                context_id=context.context_id,
                visible="",
                choice=None,
                parse_ok=False,
                attempts=0,
                error=str(exc)[:500],
                retries=exc.retries,
                usage=exc.usage,
            )
        answer = final.get("answer")
        choice = (
            answer if isinstance(answer, str) and isinstance(context.answer, ChoiceAnswer) else None
        )
        return Action(
            context_id=context.context_id,
            visible=final.get("visible", ""),
            scratchpad=final.get("scratchpad", ""),
            choice=choice,
            score=answer if isinstance(answer, float) else None,
            parse_ok=answer is not None,
            attempts=final.get("attempts", 0),
            usage=final.get("usage", Usage()),
            structured=final.get("structured"),
            retries=final.get("retries", 0),
        )
