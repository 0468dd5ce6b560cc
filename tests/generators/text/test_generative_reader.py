"""The generative reader's prompt, citation checking and span resolution, on hand-written answers."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest

from generators.text.generative_reader import (
    KIND_INSTRUCTIONS,
    NOT_FOUND_REPLY,
    RETRY_NOTE,
    CitationRewriter,
    GenerativeReader,
    claim_support,
    is_not_found_reply,
    passage_terms,
)
from generators.text.reading import ReaderPassage, ReaderResult

DOCUMENT = (
    "# Europe\n\n"
    "France is a country in western Europe. Paris is the capital of France. "
    "The Eiffel Tower was finished in 1889.\n\n"
    "Germany borders France to the east. Berlin is the capital of Germany. "
    "The Brandenburg Gate stands in Berlin.\n\n"
    "Italy is in southern Europe. Rome is the capital of Italy."
)
CHINESE_DOCUMENT = "法国位于西欧。法国的首都是巴黎。埃菲尔铁塔建于1889年。\n\n德国的首都是柏林。勃兰登堡门位于柏林。"


def passages_of(document: str) -> list[ReaderPassage]:
    """One passage per paragraph, with its offset in the document."""
    passages, position = [], 0
    for key, paragraph in enumerate(document.split("\n\n")):
        start = document.index(paragraph, position)
        passages.append(ReaderPassage(key=100 + key, text=paragraph, offset=start))
        position = start + len(paragraph)
    return passages[1:] if passages[0].text.startswith("#") else passages


class ScriptedGenerator:
    """Replies with a fixed text, streamed in small pieces; records the messages it was sent."""

    model_name = "scripted"

    def __init__(self, reply: str, piece_chars: int = 3) -> None:
        self.reply = reply
        self.piece_chars = piece_chars
        self.calls: list[list[dict]] = []

    def generate(self, messages: Sequence[dict], **options) -> str:
        self.calls.append(list(messages))
        return self.reply

    def stream(self, messages: Sequence[dict], **options) -> Iterator[str]:
        self.calls.append(list(messages))
        for i in range(0, len(self.reply), self.piece_chars):
            yield self.reply[i : i + self.piece_chars]


def gated(gate, reply: str, piece_chars: int) -> str:  # noqa: ANN001
    """What the support gate lets out of `reply` fed in pieces of `piece_chars` characters, then finished."""
    return "".join(gate.feed(reply[i : i + piece_chars]) for i in range(0, len(reply), piece_chars)) + gate.finish()


def read(reply: str, document: str = DOCUMENT, **options) -> ReaderResult:
    reader = GenerativeReader(ScriptedGenerator(reply), **options)
    result = reader.run("What is the capital?", passages_of(document))
    for span in result.spans:
        assert document[span.start : span.end] == span.text  # citations are exact document spans
    return result


def test_valid_citation_resolves_to_the_supporting_sentence():
    result = read("Paris is the capital of France [1].")
    assert result.answer == "Paris is the capital of France [1]."
    assert result.answer_type == "generated"
    assert [span.text for span in result.spans] == ["Paris is the capital of France."]
    assert result.spans[0].key == 101
    assert result.notes == [] and result.confidence > 0.5


def test_markers_are_renumbered_in_order_of_first_citation():
    result = read("Rome is the capital of Italy [3]. Berlin is the capital of Germany [2]. Again Rome [3].")
    assert result.answer == "Rome is the capital of Italy [1]. Berlin is the capital of Germany [2]. Again Rome [1]."
    assert [span.key for span in result.spans] == [103, 102]
    assert result.spans[0].text == "Rome is the capital of Italy."
    assert result.spans[1].text == "Berlin is the capital of Germany."


def test_out_of_range_citations_are_dropped_and_reported():
    result = read("Paris is the capital of France [1][7]. It has a tower [0].")
    assert result.answer == "Paris is the capital of France [1]. It has a tower."
    assert [span.key for span in result.spans] == [101]
    assert any("[7], [0]" in note and "3 passage" in note for note in result.notes)


def test_only_out_of_range_citations_fall_back_to_word_overlap():
    result = read("Berlin is the capital of Germany [9].")
    assert result.answer == "Berlin is the capital of Germany."
    assert [span.text for span in result.spans] == ["Berlin is the capital of Germany."]
    assert any("[9]" in note for note in result.notes)
    assert any("inferred" in note for note in result.notes)


def test_a_supported_sentence_without_a_marker_cites_the_passage_that_supports_it():
    result = read("Paris is the capital of France. Berlin is the capital of Germany [2].")
    assert result.answer == "Paris is the capital of France [1]. Berlin is the capital of Germany [2]."
    assert [span.text for span in result.spans] == ["Paris is the capital of France.", "Berlin is the capital of Germany."]
    assert not any("inferred" in note for note in result.notes)


def test_no_citation_is_said_and_the_best_overlapping_passage_is_inferred():
    cited = read("Paris is the capital of France [1].", cite_unmarked=False)
    result = read("Paris is the capital of France.", cite_unmarked=False)
    assert result.answer == "Paris is the capital of France."
    assert [span.text for span in result.spans] == ["Paris is the capital of France."]
    assert any("cites no passage" in note and "inferred" in note for note in result.notes)
    assert result.confidence == pytest.approx(cited.confidence / 2)


def test_an_answer_no_passage_supports_is_dropped():
    result = read("Quokkas smile.")
    assert result.answer == "" and result.spans == []
    assert any("no sentence of the answer is supported" in note for note in result.notes)


def test_an_unsupported_sentence_is_dropped_and_the_supported_one_kept():
    result = read("Paris is the capital of France [1]. Quokkas smile in Madrid [1].")
    assert result.answer == "Paris is the capital of France [1]."
    assert any("dropped 1 answer sentence" in note for note in result.notes)


def test_a_sentence_is_checked_against_the_passage_it_cites():
    # True of passage 2, not of passage 1, which it cites.
    result = read("Berlin is the capital of Germany [1].")
    assert result.answer == ""


def test_yes_or_no_goes_out_with_the_supported_claim_after_it():
    reader = GenerativeReader(ScriptedGenerator("Yes. Rome is the capital of Italy [3]."))
    *deltas, result = reader.stream("Is Rome the capital of Italy?", passages_of(DOCUMENT))
    assert result.answer == "Yes. Rome is the capital of Italy [1]." == "".join(deltas)
    unsupported = GenerativeReader(ScriptedGenerator("Yes. Quokkas rule Rome's moons."))
    *deltas, result = unsupported.stream("Is Rome the capital of Italy?", passages_of(DOCUMENT))
    assert result.answer == "" and "".join(deltas) == ""  # nothing unsupported was ever streamed


def test_a_code_block_is_checked_whole():
    document = "Install it:\n\n```bash\npip install fastapi uvicorn\n```"
    passages = [ReaderPassage(1, document, 0)]
    kept = GenerativeReader(ScriptedGenerator("Run:\n```bash\npip install fastapi\n```\nThen start uvicorn [1]."))
    result = kept.run("How do I install it?", passages)
    assert "pip install fastapi" in result.answer and "uvicorn [1]" in result.answer
    invented = GenerativeReader(ScriptedGenerator("Run:\n```bash\nconda create quokka-env\n```\nThen start uvicorn [1]."))
    assert "conda" not in invented.run("How do I install it?", passages).answer


def test_repeated_and_grouped_markers_collapse():
    result = read("Berlin is the capital of Germany [2][2] [2, 2] [passage 2].")
    assert result.answer == "Berlin is the capital of Germany [1]."
    assert len(result.spans) == 1 and result.spans[0].key == 102


def test_a_group_marker_cites_each_passage():
    result = read("Paris and Berlin are capitals [1, 2].")
    assert result.answer == "Paris and Berlin are capitals [1][2]."
    assert [span.key for span in result.spans] == [101, 102]
    assert "Paris" in result.spans[0].text and "Berlin" in result.spans[1].text


def test_a_marker_after_the_full_stop_cites_the_sentence_before_it():
    result = read("Berlin is the capital of Germany. [2]")
    assert [span.text for span in result.spans] == ["Berlin is the capital of Germany."]


def test_two_claims_citing_one_passage_span_both_sentences():
    result = read("Paris is the capital of France [1]. The Eiffel Tower was finished in 1889 [1].")
    assert result.spans[0].text == "Paris is the capital of France. The Eiffel Tower was finished in 1889."


def test_a_supported_claim_citing_no_sentence_alone_cites_the_best_sentence():
    result = read("Rome, southern Europe [3].")
    assert result.spans[0].text in DOCUMENT and "Italy" in result.spans[0].text


def test_brackets_that_are_not_citations_stay():
    result = read("Paris [the city] is the capital of France [1]. Paris [a")
    assert result.answer == "Paris [the city] is the capital of France [1]. Paris [a"


def test_chinese_answer_with_full_width_markers():
    result = read("法国的首都是巴黎【1】。柏林是德国的首都［2］。", CHINESE_DOCUMENT)
    assert result.answer == "法国的首都是巴黎[1]。柏林是德国的首都[2]。"
    assert [span.text for span in result.spans] == ["法国的首都是巴黎。", "德国的首都是柏林。"]


def test_chinese_list_separators():
    result = read("巴黎和柏林都是首都[1，2]。", CHINESE_DOCUMENT)
    assert result.answer == "巴黎和柏林都是首都[1][2]。"


@pytest.mark.parametrize(
    "reply",
    [NOT_FOUND_REPLY, "the passages do not contain the answer", f"{NOT_FOUND_REPLY} [1]", f"  {NOT_FOUND_REPLY}\n"],
)
def test_the_fixed_not_found_reply_gives_an_empty_answer(reply):
    assert is_not_found_reply(reply)
    result = read(reply)
    assert result.answer == "" and result.spans == [] and result.confidence == 0.0
    assert any("do not contain" in note for note in result.notes)


def test_an_answer_merely_mentioning_passages_is_not_the_not_found_reply():
    assert not is_not_found_reply("The passages say Paris [1].")
    assert not is_not_found_reply("")


def test_empty_generation():
    result = read("   ")
    assert result.answer == "" and result.spans == []
    assert result.notes == ["the generator returned no text"]


def test_no_passages_means_no_generator_call():
    generator = ScriptedGenerator("Paris [1].")
    result = GenerativeReader(generator).run("What is the capital?", [])
    assert result.answer == "" and generator.calls == []
    assert list(GenerativeReader(generator).stream("What?", []))[-1] == result


REPLIES = [
    "Paris is the capital of France [1].",
    "Rome is the capital of Italy [3]. Berlin [2][9] and Rome [3].",
    "Berlin is the capital of Germany [9].",
    "Berlin is the capital of Germany. [2]",
    "Paris [the city] is the capital [1, 2]. See [a",
    NOT_FOUND_REPLY,
]


@pytest.mark.parametrize("reply", REPLIES)
@pytest.mark.parametrize("piece_chars", [1, 2, 5, 1000])
def test_stream_yields_the_answer_then_the_same_result_as_run(reply, piece_chars):
    reader = GenerativeReader(ScriptedGenerator(reply, piece_chars))
    events = list(reader.stream("What is the capital?", passages_of(DOCUMENT)))
    *deltas, result = events
    assert all(isinstance(delta, str) and delta for delta in deltas)
    assert isinstance(result, ReaderResult)
    assert result == reader.run("What is the capital?", passages_of(DOCUMENT))
    assert "".join(deltas) == result.answer  # the not-found reply is held back: "" streamed, "" answered


def test_rewriter_holds_back_a_marker_until_it_closes():
    rewriter = CitationRewriter(passage_count=2)
    assert rewriter.feed("Paris is the capital ") == "Paris is the capital"
    assert rewriter.feed("[") == ""
    assert rewriter.feed("5") == ""
    assert rewriter.feed("]") == ""  # dropped, with the space before it
    assert rewriter.feed(" [2") == ""
    assert rewriter.feed("].") == " [1]."
    assert rewriter.finish() == ""
    assert rewriter.out_of_range == [5] and rewriter.cited_passages == [2]


def test_prompt_numbers_the_passages_and_asks_for_citations():
    reader = GenerativeReader(ScriptedGenerator(""))
    prompt = reader.build_prompt("What is the capital of Italy?", passages_of(DOCUMENT))
    system, user = prompt.messages
    assert system["role"] == "system" and "[1]" in system["content"] and NOT_FOUND_REPLY in system["content"]
    assert user["role"] == "user"
    assert user["content"].index("[1] France") < user["content"].index("[2] Germany") < user["content"].index("[3] Italy")
    assert "Question: What is the capital of Italy?" in user["content"]
    assert user["content"].rstrip().endswith(KIND_INSTRUCTIONS["factoid"])
    assert prompt.passages == passages_of(DOCUMENT)


def test_the_instruction_follows_the_kind_of_question():
    reader = GenerativeReader(ScriptedGenerator(""))
    assert reader.build_prompt("Is Rome in Italy?", passages_of(DOCUMENT)).messages[-1]["content"].endswith(
        KIND_INSTRUCTIONS["yesno"])
    assert reader.build_prompt("How do I get to Rome?", passages_of(DOCUMENT)).messages[-1]["content"].endswith(
        KIND_INSTRUCTIONS["howto"])


def test_a_chinese_question_is_asked_to_be_answered_in_chinese():
    from generators.text.generative_reader import CHINESE_REPLY

    reader = GenerativeReader(ScriptedGenerator(""))
    chinese = reader.build_prompt("法国的首都是哪里？", passages_of(CHINESE_DOCUMENT)).messages[-1]["content"]
    assert chinese.rstrip().endswith(CHINESE_REPLY)
    english = reader.build_prompt("What is the capital of Italy?", passages_of(DOCUMENT)).messages[-1]["content"]
    assert CHINESE_REPLY not in english


def test_prompt_puts_chat_history_between_instructions_and_passages():
    reader = GenerativeReader(ScriptedGenerator(""))
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]
    prompt = reader.build_prompt("And Italy?", passages_of(DOCUMENT), history=history)
    assert [m["role"] for m in prompt.messages] == ["system", "user", "assistant", "user"]
    assert prompt.messages[1:3] == history and "Passages:" in prompt.messages[3]["content"]


def test_context_budget_keeps_the_sentences_that_share_the_question_words():
    passages = passages_of(DOCUMENT)
    reader = GenerativeReader(ScriptedGenerator("The Brandenburg Gate stands in Berlin [1]."), max_context_chars=45)
    prompt = reader.build_prompt("Where is the Brandenburg Gate?", passages)
    user = prompt.messages[-1]["content"]
    assert "[1] The Brandenburg Gate stands in Berlin." in user and "Paris" not in user
    assert prompt.passages == [passages[1]]  # whole passage, offsets unchanged: citations resolve against it
    result = reader.run("Where is the Brandenburg Gate?", passages)
    assert result.spans[0].text == "The Brandenburg Gate stands in Berlin."
    assert DOCUMENT[result.spans[0].start : result.spans[0].end] == result.spans[0].text




TABLE = ("Shipping rates by zone. Rates change every January.\n\n| Zone | Rate | Days |\n|---|---|---|\n"
         "| North | 4.20 EUR | 2 |\n| South | 5.10 EUR | 3 |\n| East | 6.00 EUR | 4 |")


@pytest.mark.parametrize("budget", [60, 1000])
def test_table_rows_reach_the_model_as_rows_under_their_header(budget):
    reader = GenerativeReader(ScriptedGenerator("5.10 EUR [1]."), max_context_chars=budget)
    user = reader.build_prompt("How much is shipping to the South zone?", [ReaderPassage(0, TABLE, 0)]).messages[-1][
        "content"]
    assert "| Zone | Rate | Days |\n|---|---|---|\n" in user  # the column names, on their own lines
    if budget == 1000:
        assert "|---|---|---|\n| North | 4.20 EUR | 2 |\n| South | 5.10 EUR | 3 |\n" in user


def test_rows_of_a_table_continued_from_an_earlier_chunk_get_its_header():
    rows = TABLE[TABLE.index("| South") :]
    continued = ReaderPassage(0, rows, 0, table_header="| Zone | Rate | Days |\n|---|---|---|")
    reader = GenerativeReader(ScriptedGenerator("5.10 EUR [1]."))
    user = reader.build_prompt("How much is shipping to the South zone?", [continued]).messages[-1]["content"]
    assert "[1] | Zone | Rate | Days |\n|---|---|---|\n| South | 5.10 EUR | 3 |\n| East | 6.00 EUR | 4 |" in user


def test_a_the_passage_states_preamble_is_cut():
    for opening in ("The passage states that", "Passage [1] says that", "[1] mentions that", "states that"):
        assert read(f"{opening} Paris is the capital of France [1].").answer == "Paris is the capital of France [1]."
    for kept in ("It states that Paris is the capital of France [1].", "Notes that Paris is the capital of France [1]."):
        assert read(kept).answer == kept



def test_numbered_steps_keep_their_numbers_and_a_framing_line_is_not_a_claim():
    from generators.text.generative_reader import SupportGate

    passages = [ReaderPassage(0, "Create an environment variable named OPENAPI_URL. "
                                 "Read the environment variable with os.getenv in settings.", 0)]
    reply = ("To do it, follow these steps:\n\n1. **Create an environment variable**: Create OPENAPI_URL.\n"
             "2. **Read the environment variable**: Use os.getenv in settings.\n3. Deploy it to Mars.")
    for piece_chars in (1, 3, 1000):
        gate = SupportGate(passages, 0.5)
        out = gated(gate, reply, piece_chars)
        assert out.startswith("To do it, follow these steps:")  # framing waits for a supported claim, then goes out
        assert "\n1. **Create an environment variable**: Create OPENAPI_URL.\n2. **Read" in out
        assert "Mars" not in out and gate.dropped == ["3. Deploy it to Mars."]


@pytest.mark.parametrize(("reply", "answer"), [
    ("Yes, Yes [1]. Paris is the capital of France [1].", "Yes [1]. Paris is the capital of France [1]."),
    ("Yes, Yes, Yes, yes, Paris is the capital of France [1].", "Yes, Paris is the capital of France [1]."),
    ("No, no, Berlin is the capital of Germany [2].", "No, Berlin is the capital of Germany [1]."),
    ("Yes, Paris is the capital of France [1].", "Yes, Paris is the capital of France [1]."),
])
def test_a_verdict_said_twice_is_said_once(reply, answer):
    assert read(reply).answer == answer


def test_specific_terms_are_the_names_numbers_and_code_an_answer_mentions():
    from generators.text.generative_reader import specific_terms

    assert specific_terms("The default size is 1MB.") == {"1mb"}
    assert specific_terms("Create a `HelloService` class.") == {"helloservice"}
    assert specific_terms("Use `gcloud run deploy`, then call item.model_dump(exclude_unset=True).") == \
        {"gcloud", "run", "deploy", "item", "model", "dump", "exclude", "unset"}
    assert specific_terms("2. Open the settings and save them.") == set()  # a list number is not a name


@pytest.mark.parametrize(("reply", "kept"), [
    ("Paris is the capital of France [1]. The capital of France is Paris, reached by `parisrail` [1].",
     "Paris is the capital of France [1]."),
    ("Paris is the capital of France [1]. The Eiffel Tower was finished in 1889 [1].",
     "Paris is the capital of France [1]. The Eiffel Tower was finished in 1889 [1]."),
    ("The Eiffel Tower was finished in 1887 [1]. Paris is the capital of France [1].",
     "Paris is the capital of France [1]."),
])
def test_with_grounded_names_a_segment_naming_what_no_passage_holds_is_dropped(reply, kept):
    reader = GenerativeReader(ScriptedGenerator(reply), grounded_names=True)
    result = reader.run("What is the capital?", passages_of(DOCUMENT))
    assert result.answer == kept
    lenient = GenerativeReader(ScriptedGenerator(reply)).run("What is the capital?", passages_of(DOCUMENT))
    assert lenient.answer == reply  # off, the same words pass on their share of passage words


def test_a_lead_in_whose_content_was_dropped_goes_too_and_blank_lines_do_not_pile_up():
    reply = ("Paris is the capital of France [1].\n\n\n\nHere is an example:\n\n```python\nvisit(mars)\n```\n\n\n"
             "Berlin is the capital of Germany [2].\n\nTo see it, run this:\n\n```\nfly --to moon\n```")
    for piece_chars in (2, 1000):
        reader = GenerativeReader(ScriptedGenerator(reply, piece_chars=piece_chars))
        result = reader.run("What is the capital?", passages_of(DOCUMENT))
        assert result.answer == "Paris is the capital of France [1].\n\nBerlin is the capital of Germany [2].", \
            result.answer
    middle = GenerativeReader(ScriptedGenerator("Here is how:\n\nVisit Mars daily.\n\nParis is the capital of France [1]."))
    assert middle.run("What is the capital?", passages_of(DOCUMENT)).answer == "Paris is the capital of France [1]."
    kept = GenerativeReader(ScriptedGenerator("Paris is the capital [1]:\n\nParis is the capital of France [1]."))
    assert kept.run("What is the capital?", passages_of(DOCUMENT)).answer == \
        "Paris is the capital [1]:\n\nParis is the capital of France [1]."  # a lead-in goes out with what it leads to


def test_a_colon_inside_inline_code_does_not_end_a_segment():
    from generators.text.generative_reader import SupportGate

    passages = [ReaderPassage(0, 'The stored item has "tax": 20.2 and the input model has the default "tax": 10.5.', 0)]
    reply = 'The input model takes the default `"tax": 10.5` instead of the stored `"tax": 20.2`.'
    for piece_chars in (1, 1000):
        gate = SupportGate(passages, 0.5, grounded_names=True)
        out = gated(gate, reply, piece_chars)
        assert out == reply and gate.kept_claims == 1


@pytest.mark.parametrize(("reply", "answer"), [
    ("[1] [2][3]\n\nParis is the capital of France [1].", "Paris is the capital of France [1]."),
    ("What is the capital? Paris is the capital of France [1].", "Paris is the capital of France [1]."),
    ("[1] [2]", ""),
    ("What is the capital?", ""),
])
def test_bare_citation_markers_and_the_question_said_back_are_not_an_answer(reply, answer):
    assert read(reply).answer == answer


class SequenceGenerator(ScriptedGenerator):
    """Gives its replies in turn, one per call."""

    def __init__(self, *replies: str) -> None:
        super().__init__(replies[0])
        self.replies = list(replies)

    def generate(self, messages: Sequence[dict], **options) -> str:
        self.reply = self.replies[len(self.calls)]
        return super().generate(messages, **options)

    def stream(self, messages: Sequence[dict], **options) -> Iterator[str]:
        self.reply = self.replies[len(self.calls)]
        return super().stream(messages, **options)


def run_or_stream(reader: GenerativeReader, how: str, passages: list[ReaderPassage]) -> tuple[str, ReaderResult]:
    """The answer text the caller sees and the final result, by `run` or by joining `stream`'s deltas."""
    question = "What is the capital of France?"
    if how == "run":
        result = reader.run(question, passages)
        return result.answer, result
    events = list(reader.stream(question, passages))
    assert isinstance(events[-1], ReaderResult)
    return "".join(e for e in events[:-1] if isinstance(e, str)), events[-1]


@pytest.mark.parametrize("how", ["run", "stream"])
@pytest.mark.parametrize("first_reply", [NOT_FOUND_REPLY, "Lyon is a big city in the south [2]."])
def test_an_empty_answer_is_asked_again_with_the_top_passage_alone(how, first_reply):
    generator = SequenceGenerator(first_reply, "Paris is the capital of France [1].")
    reader = GenerativeReader(generator, retry_top_passage=True)
    shown, result = run_or_stream(reader, how, passages_of(DOCUMENT))
    assert shown == result.answer == "Paris is the capital of France [1]."
    assert [span.text for span in result.spans] == ["Paris is the capital of France."]
    assert RETRY_NOTE in result.notes
    assert len(generator.calls) == 2
    first, second = (call[-1]["content"] for call in generator.calls)
    assert "[2]" in first and "Berlin" in first
    assert "[2]" not in second and "Berlin" not in second and "Paris" in second


@pytest.mark.parametrize("how", ["run", "stream"])
def test_a_second_decline_stays_empty_with_both_attempts_noted(how):
    generator = SequenceGenerator(NOT_FOUND_REPLY, NOT_FOUND_REPLY)
    shown, result = run_or_stream(GenerativeReader(generator, retry_top_passage=True), how, passages_of(DOCUMENT))
    assert shown == result.answer == ""
    assert result.notes.count("the generator replied that the passages do not contain the answer") == 2
    assert RETRY_NOTE in result.notes


@pytest.mark.parametrize(("retry", "passages", "reply", "calls"), [
    (True, slice(None), "Paris is the capital of France [1].", 1),  # answered: no second call
    (True, slice(0, 1), NOT_FOUND_REPLY, 1),  # one passage only: nothing else to try
    (False, slice(None), NOT_FOUND_REPLY, 1),  # turned off
])
def test_no_retry_when_answered_alone_or_turned_off(retry, passages, reply, calls):
    generator = SequenceGenerator(reply, "Paris is the capital of France [1].")
    GenerativeReader(generator, retry_top_passage=retry).run("What is the capital?", passages_of(DOCUMENT)[passages])
    assert len(generator.calls) == calls


def test_claim_support_can_leave_out_what_the_question_already_says():
    held = passage_terms("Messages sent over WebSocket connections are text or bytes.")
    claim = "Add a middleware that compresses messages in WebSocket connections."
    asked = passage_terms("How do I compress messages on WebSocket connections?")
    assert claim_support(claim, held) == pytest.approx(3 / 6)  # add, middleware, compresses missing
    assert claim_support(claim, held, asked) == pytest.approx(0 / 3)  # what it adds: none of it held
    # A claim made only of the question's words is judged on all of them.
    assert claim_support("Messages on WebSocket connections.", held, asked) == 1.0


@pytest.mark.parametrize("how", ["run", "stream"])
def test_the_second_try_must_take_what_it_adds_to_the_question_from_the_passage(how):
    # "capital" and "France" come from the question (and the passage); "Lyon" from nowhere.
    invented = "The capital of France is Lyon [1]."
    generator = SequenceGenerator(NOT_FOUND_REPLY, invented)
    shown, result = run_or_stream(GenerativeReader(generator, retry_top_passage=True), how, passages_of(DOCUMENT))
    assert shown == result.answer == ""
    assert "no sentence of the answer is supported by the passages" in result.notes
    # The same sentence as a first answer is judged as before: two of its three words are in the passages.
    first = GenerativeReader(SequenceGenerator(invented), min_support=0.5).run(
        "What is the capital of France?", passages_of(DOCUMENT))
    assert first.answer.startswith("The capital of France")
