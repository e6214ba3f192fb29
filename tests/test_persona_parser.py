"""Persona markdown parser: the Stage 3 seed field by field, an unseen document, variants, errors."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from personasim.errors import InputError
from personasim.hashing import content_hash
from personasim.inputs.persona import HoursPerWeek, Persona, Stage
from personasim.inputs.persona_fields import parse_hours, split_items
from personasim.inputs.persona_lint import lint_persona, stray_escapes
from personasim.inputs.persona_parser import find_persona, load_personas, parse_personas, persona_files, split_personas

REPO = Path(__file__).resolve().parents[1]
SEED = REPO / "personas" / "stage3-personas.md"
SEED_ORIGINAL = Path("/work/shared/seeds/000_c98bd989050ce053.txt")
UNSEEN = REPO / "tests" / "fixtures" / "personas" / "stage4-persona-23.md"
SEED_IDS = [
    "p17-assistant-director-of-finance",
    "p18-primary-care-practice-manager",
    "p19-information-governance-lead",
    "p20-primary-care-operations-lead-icb",
    "p21-chief-allied-health-professional",
    "p22-specialist-doctor-in-dermatology",
]


@pytest.fixture(scope="module")
def seed() -> dict[int, Persona]:
    result = parse_personas(SEED.read_text(encoding="utf-8"), "personas/stage3-personas.md")
    assert result.warnings == []
    return {persona.number: persona for persona in result.personas}


@pytest.fixture(scope="module")
def unseen() -> tuple[Persona, list]:
    result = parse_personas(UNSEEN.read_text(encoding="utf-8"), "p23.md")
    assert len(result.personas) == 1
    return result.personas[0], result.warnings


def lost_lines(persona: Persona, source: str) -> list[str]:
    """Content lines of `source` whose words appear nowhere in the parsed persona."""
    dumped = " ".join(json.dumps(persona.model_dump(mode="json"), ensure_ascii=False).replace("\\n", " ").split())
    marker = re.compile(r"^\s*(?:(?:[-*+]|[0-9]+[.)])\s+)?(?:\*\*[^*]+?(?::\*\*|\*\*:))?\s*")
    lost = []
    for line in source.splitlines()[1:]:
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or set(stripped) <= set("-*_"):
            continue
        words = " ".join(marker.sub("", line, count=1).split())
        if words and json.dumps(words, ensure_ascii=False)[1:-1] not in dumped:
            lost.append(line)
    return lost


# -- the seed document ---------------------------------------------------------------------------


@pytest.mark.skipif(not SEED_ORIGINAL.exists(), reason="the shared seed is only present in the workspace")
def test_seed_file_is_a_verbatim_copy():
    assert SEED.read_bytes() == SEED_ORIGINAL.read_bytes()


def test_seed_ids_titles_lines_and_stage(seed):
    assert [p.id for p in seed.values()] == SEED_IDS
    assert [p.source.line for p in seed.values()] == [20, 156, 292, 422, 552, 705]
    assert {p.source.path for p in seed.values()} == {"personas/stage3-personas.md"}
    stage = seed[17].stage
    assert stage == Stage(name="Stage 3: Senior managers and leaders", number=3, description=stage.description)
    assert stage.description.startswith("This stage supports senior managers and leaders operating at divisional")
    assert stage.description.endswith("accountable for major aspects of organisational performance.")
    assert all(p.stage == stage for p in seed.values())


def test_content_hash_is_the_persona_text_without_trailing_separator(seed):
    lines = SEED.read_text(encoding="utf-8").split("\n")
    assert lines[19] == "## Persona 17: Assistant Director of Finance" and lines[151] == "- Role modelling for children"
    assert seed[17].content_hash == content_hash("\n".join(lines[19:152]) + "\n")
    assert len({p.content_hash for p in seed.values()}) == 6
    without_rules = SEED.read_text(encoding="utf-8").replace("\n---\n", "\n")
    rehashed = parse_personas(without_rules, "x.md").personas
    assert [p.content_hash for p in rehashed] == [p.content_hash for p in seed.values()]


def test_persona_17_text_sections(seed):
    p = seed[17]
    assert p.title == "Assistant Director of Finance"
    assert p.role_context.startswith("As the assistant director of finance at an acute trust I oversee")
    assert p.role_context.endswith("deputise for the chief financial officer as required.")
    assert p.framework_application.startswith("The management and leadership framework highlights")
    assert p.framework_application.endswith("It is a useful document to structure these conversations.")


def test_persona_17_diversity_profile(seed):
    d = seed[17].diversity_profile
    assert d.protected_characteristics.identity == [
        "British Indian (Punjabi Sikh) man, age 47, heterosexual, turban-wearing"
    ]
    assert d.protected_characteristics.relevant_context.startswith("Second-generation British Sikh.")
    assert list(d.positionality) == [
        "Social Class",
        "Educational Background",
        "Family Context",
        "Geographic Context",
        "Religious Identity",
    ]
    assert d.positionality["Social Class"] == "Professional middle class, parents also professional"
    power = d.experience_of_power
    assert power.minoritised_identities == (
        "British Sikh man in NHS leadership, turban-wearing, visible religious minority"
    )
    assert len(power.experienced_barriers) == 9
    assert (
        power.experienced_barriers[0] == "Post-9/11 conflation with Muslims leading to misdirected Islamophobic abuse"
    )
    assert power.experienced_barriers[-1] == "Prayer time needs not always understood or accommodated"
    assert len(power.experienced_discrimination) == 8
    # The stray escapes are kept as written; `personas lint` reports them.
    assert power.experienced_discrimination[4] == "\\'\"Go back to your country\" despite\\' being British-born"
    assert power.power_position.startswith("Significant organisational power as assistant director of finance.")
    assert power.power_position.endswith("Sikh community support provides resilience.")
    critical = d.critical_consciousness
    assert critical.awareness_of_structural_inequality.startswith("Deep awareness of religious discrimination")
    assert critical.experience_challenging_power.startswith("Challenges religious discrimination when encountered.")
    assert critical.recognition_of_privilege.startswith("Male privilege (especially in finance)")
    assert critical.commitment_to_justice.endswith("Protective of all minoritised staff.")
    assert power.other == critical.other == d.protected_characteristics.other == {}


def test_persona_17_learning_readiness(seed):
    r = seed[17].learning_readiness
    assert r.current_capabilities == [
        "Strong technical finance expertise",
        "Strategic thinking and planning",
        "Stakeholder management",
        "Resilience and determination",
    ]
    assert r.learning_preferences[0] == "Learning through observation and shadowing"
    assert r.barriers_to_engagement == [
        "Limited time with work and parenting responsibilities",
        "Preference for applied learning over classroom",
        "Some exhaustion from managing work and family",
        "Protective of personal time with children",
    ]
    assert r.access_to_learning[-1] == "Motivated to develop"


def test_persona_17_competency_profile(seed):
    c = seed[17].competency_development_profile
    assert c.target_competencies == [
        "Build relationships (Stage 3)",
        "Allocate and optimise the use of resources (Stage 3)",
        "Build relationships (Stage 3)",
    ]
    assert c.prior_knowledge.understands == [
        "Financial management",
        "reporting",
        "forecasting",
        "budgeting",
        "systems",
        "technical finance",
        "risk management",
    ]
    assert seed[17].gaps == [
        "Building strategic relationships beyond finance",
        "influencing across functions",
        "collaborative leadership at scale",
        "confidence in networking",
        "translating finance insights for non-finance colleagues",
    ]
    assert c.prior_knowledge.gaps_text.startswith("Building strategic relationships beyond finance, influencing")
    constraints = c.contextual_constraints
    assert constraints.time_available == "5-6 hours weekly for development during work time"
    assert seed[17].hours_per_week == HoursPerWeek(min=5, max=6)
    assert constraints.system_pressures == "Financial pressures, cost improvement, system deficits, external scrutiny"
    assert constraints.support_available.startswith("Supportive CFO")
    assert c.evidence_gathering_capacity.can_demonstrate == [
        "Financial management and reporting",
        "Strategic planning contributions",
        "Stakeholder engagement",
    ]
    assert c.evidence_gathering_capacity.needs_support[1] == "Evidencing collaborative leadership"
    assert seed[17].misunderstandings == [
        "Thinking finance leadership is purely technical",
        "Believing collaboration means compromise of financial rigour",
        "Assuming networking is about socialising not strategic relationships",
    ]


def test_persona_17_peer_context_and_trajectory(seed):
    peer = seed[17].peer_learning_context
    assert peer.availability == {
        "Mentor Access": "Has mentor (senior NHS finance director), very beneficial",
        "Peer Groups": "Finance directors network, NHS finance community, women in finance group",
        "Colleague Support": "Good relationships with executive colleagues, growing peer network",
    }
    assert peer.willingness_to_engage == {
        "Comfort": "Comfortable with professional peer learning",
        "Time Commitment": "Committed when fits with childcare",
        "Vulnerability": "Selective about personal life but building trust",
    }
    t = seed[17].developmental_trajectory
    assert t.coming_from.startswith("Experienced finance professional rebuilding confidence")
    assert t.heading_toward.startswith("Chief Financial Officer or executive director role.")
    assert t.motivations == [
        "Career progression and CFO role",
        "Demonstrating collaborative finance leadership",
        "Creating supportive environments",
        "Financial stability and independence",
        "Role modelling for children",
    ]
    assert seed[17].evaluation_criteria == [] and seed[17].extra == {}


@pytest.mark.parametrize(
    ("number", "hours", "identities", "first_gap", "last_misunderstanding", "barriers", "motivations"),
    [
        (18, (15, 20), 2, "Managing complex resistance to change", "Assuming change management is purely technical", 12, 5),
        (19, (3, 4), 1, "Demonstrating service improvement impact", "Assuming strategic roles require different skill set entirely", 7, 5),
        (20, (4, 5), 1, "NHS-specific governance and policy landscape", "Assuming formal structures more important than informal", 7, 5),
        (21, (2, 3), 1, "Navigating Board-level politics as minoritised leader", "Assuming lived experience of discrimination is bias not insight", 8, 7),
        (22, (1, 2), 1, "Service development and strategy", "Assuming medical leadership automatic not learned", 8, 5),
    ],
)  # fmt: skip
def test_personas_18_to_22(seed, number, hours, identities, first_gap, last_misunderstanding, barriers, motivations):
    p = seed[number]
    assert p.hours_per_week == HoursPerWeek(min=hours[0], max=hours[1])
    assert len(p.diversity_profile.protected_characteristics.identity) == identities
    assert p.gaps[0] == first_gap
    assert p.misunderstandings[-1] == last_misunderstanding
    assert len(p.diversity_profile.experience_of_power.experienced_barriers) == barriers
    assert len(p.developmental_trajectory.motivations) == motivations
    assert p.diversity_profile.experience_of_power.power_position
    assert p.developmental_trajectory.coming_from and p.developmental_trajectory.heading_toward
    assert set(p.peer_learning_context.availability) == {"Mentor Access", "Peer Groups", "Colleague Support"}
    assert set(p.peer_learning_context.willingness_to_engage) == {"Comfort", "Time Commitment", "Vulnerability"}
    assert all(len(items) >= 4 for items in p.learning_readiness.model_dump().values())


def test_persona_18_two_identities_and_disability_positionality(seed):
    d = seed[18].diversity_profile
    assert d.protected_characteristics.identity == [
        "White British woman, age 54, lesbian (out at work)",
        "Dyslexia and ADHD (diagnosed age 45 during leadership development programme)",
    ]
    assert d.positionality["Disability Experience"].startswith("Dyslexia and ADHD diagnosed age 45")
    assert seed[18].competency_development_profile.contextual_constraints.time_available == (
        "15-20 hours weekly (part-time role)"
    )


def test_persona_21_sentence_lists_blank_lines_and_duplicate_competency(seed):
    p = seed[21]
    assert p.role_context.count("\n") == 1 and p.role_context.split("\n")[1].startswith("I have worked my way up")
    assert p.competency_development_profile.prior_knowledge.understands == [
        "AHP clinical practice across disciplines (physio, OT, speech and language, dietetics, podiatry, "
        "radiography, etc.)",
        "Professional standards and regulation (HCPC)",
        "Workforce planning and development",
        "Quality improvement and patient safety",
        "Equity and inclusion frameworks (WRES, WDES)",
        "System leadership and ICS structures",
        "Strategic planning and delivery",
        "Stakeholder engagement",
        "NHS governance and compliance",
    ]
    assert p.competency_development_profile.target_competencies.count("Build relationships (Stage 3)") == 2
    assert p.peer_learning_context.willingness_to_engage["Vulnerability"].endswith('being seen as "playing race card".')
    assert p.hours_per_week == HoursPerWeek(min=2, max=3)


def test_persona_22_values(seed):
    p = seed[22]
    assert p.diversity_profile.protected_characteristics.identity == [
        "Black British (Ghanaian heritage) woman, age 36, heterosexual"
    ]
    assert "1-2 hours weekly within job plan" in p.learning_readiness.access_to_learning
    assert p.developmental_trajectory.motivations[-1] == "Contributing beyond clinical practice to service development"


@pytest.mark.parametrize("number", [17, 18, 19, 20, 21, 22])
def test_seed_personas_lose_no_text(seed, number):
    text = SEED.read_text(encoding="utf-8")
    start = text.index(f"## Persona {number}:")
    end = text.find("\n## ", start + 1)
    assert lost_lines(seed[number], text[start : end if end > 0 else None]) == []


# -- a document the parser has not seen --------------------------------------------------------


def test_unseen_persona_fields(unseen):
    p, _ = unseen
    assert p.id == "p23-director-of-nursing-community-services"
    assert p.title == "Director of Nursing – Community Services"
    assert p.stage == Stage(
        name="Stage 4: Executive and system leaders",
        number=4,
        description="This stage supports executive directors and system leaders who set organisational strategy.",
    )
    assert p.role_context == (
        "I’m the director of nursing for community services across three boroughs. I lead “hospital at home”, "
        "district nursing and rapid response teams.\n\nI joined the executive team eighteen months ago."
    )
    d = p.diversity_profile
    assert d.protected_characteristics.identity == [
        "Welsh woman, age 58, bisexual",
        "Deaf since childhood (uses BSL and lip-reading)",
    ]
    assert d.protected_characteristics.other == {"Preferred Name": "Cerys"}
    assert d.positionality == {
        "Social Class": "Working class background, professional middle class now",
        "Language": "Welsh first language, fluent BSL",
        "Family Context": "Lives with partner, two adult children",
    }
    assert d.experience_of_power.experienced_barriers == [
        "Meetings booked without interpreters",
        "Fire alarms without visual alerts\n  - Reported twice, fixed in one building only",
        "Assumed to be “less able” on video calls",
    ]
    assert p.learning_readiness.learning_preferences == [
        "Captioned video with transcripts",
        "Written case studies",
        "One-to-one coaching with an interpreter",
    ]
    c = p.competency_development_profile
    assert c.prior_knowledge.understands == [
        "Clinical governance",
        "safeguarding (adults, children)",
        "workforce planning",
        "community nursing models",
    ]
    assert c.prior_knowledge.gaps == ["Board-level finance", "digital transformation", "influencing national policy"]
    assert p.hours_per_week == HoursPerWeek(min=3, max=4)
    assert c.contextual_constraints.other == {"Interpreter Budget": "10 hours per month"}
    assert c.evidence_gathering_capacity.needs_support == ["Evidencing system-level influence"]
    assert p.misunderstandings[0] == "Thinking “accessible” means only “captioned”"
    assert p.peer_learning_context.availability["Peer Groups"].startswith("Deaf leaders network")
    assert p.developmental_trajectory.motivations == [
        "Making community services visible at board level",
        "Showing deaf people can lead at the top",
    ]
    assert p.evaluation_criteria == [
        "Every video has captions and a transcript.",
        "Activities can be done asynchronously, without live calls.",
        "Examples include community (not only acute) settings.",
    ]
    assert p.extra == {"Learner’s Notes": ["Prefers “plain English” summaries", "Reads on a tablet"]}


def test_unseen_persona_warnings_name_file_and_line(unseen):
    _, warnings = unseen
    assert [(w.path, w.line) for w in warnings] == [("p23.md", 33), ("p23.md", 93), ("p23.md", 134)]
    assert "'Preferred Name'" in warnings[0].message and "other" in warnings[0].message
    assert "'Interpreter Budget'" in warnings[1].message
    assert str(warnings[2]).startswith("p23.md:134: unknown section 'Learner’s Notes'")


def test_unseen_persona_loses_no_text(unseen):
    text = UNSEEN.read_text(encoding="utf-8")
    assert lost_lines(unseen[0], text[text.index("## Persona 23") :]) == []


# -- what other authors write ------------------------------------------------------------------

VARIANT = """\
## Persona 7: Estates Manager ##

Written by someone else.

### Role Context
I look after buildings.

### Learning Readiness

**Current Capabilities:**
+ Budgets
\t- Capital budgets
- Contractors

#### Learning Preferences
1) Site visits
2) Short videos
   that wrap onto a second line

### Competency Development Profile

#### Prior Knowledge
- **Understands**: Estates law, fire safety
- **Gaps:**   Net zero, and digital twins

#### Contextual Constraints
- **Time Available:** about an hour a week

### Developmental Trajectory
**Heading Toward:** Director of estates.
**Motivations:** Two things:
- Safer buildings
- Lower bills

#### Coming From
Facilities supervisor.

### Evaluation Criteria
- Uses estates examples
"""


def test_variant_markdown_is_read():
    result = parse_personas(VARIANT, "v.md")
    p = result.personas[0]
    assert p.id == "p7-estates-manager" and p.role_context == "I look after buildings."
    assert p.learning_readiness.current_capabilities == ["Budgets\n  - Capital budgets", "Contractors"]
    assert p.learning_readiness.learning_preferences == ["Site visits", "Short videos that wrap onto a second line"]
    assert p.competency_development_profile.prior_knowledge.understands == ["Estates law", "fire safety"]
    assert p.gaps == ["Net zero", "digital twins"]
    assert p.hours_per_week == HoursPerWeek(min=1, max=1)
    t = p.developmental_trajectory
    assert (t.coming_from, t.heading_toward) == ("Facilities supervisor.", "Director of estates.")
    assert t.motivations == ["Two things:", "Safer buildings", "Lower bills"]
    assert p.evaluation_criteria == ["Uses estates examples"]
    assert p.extra == {"text": "Written by someone else."}
    assert [(w.line, w.message) for w in result.warnings] == [
        (3, "loose text 'Written by someone else.' in the persona: kept in extra['text']")
    ]


def test_crlf_bom_and_lf_documents_parse_the_same():
    text = SEED.read_text(encoding="utf-8")
    lf = parse_personas(text, "x.md").personas
    crlf = parse_personas("\ufeff" + text.replace("\n", "\r\n"), "x.md").personas
    assert [p.model_dump() for p in crlf] == [p.model_dump() for p in lf]


def test_unknown_and_duplicate_sections_are_kept_and_reported():
    doc = "## Persona 9: Tester\n\n### Role Context\nFirst.\n\n### Role Context\nSecond.\n\n### Hobbies\n- Chess\n"
    result = parse_personas(doc, "d.md")
    p = result.personas[0]
    assert p.role_context == "First."
    assert p.extra == {"Role Context": "Second.", "Hobbies": ["Chess"]}
    assert [(w.line, w.message.split()[0]) for w in result.warnings] == [(6, "duplicate"), (9, "unknown")]


# -- numbers and lists ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5-6 hours weekly for development during work time", (5, 6)),
        ("2-3 hours weekly maximum (often less due to crisis management)", (2, 3)),
        ("15-20 hours weekly (part-time role)", (15, 20)),
        ("1-2 hours weekly within job plan", (1, 2)),
        ("3 hours a week", (3, 3)),
        ("3–4 hours a week", (3, 4)),
        ("2 to 4 hrs per week", (2, 4)),
        ("1.5 hours weekly", (1.5, 1.5)),
        ("one hour a week", (1, 1)),
        ("up to 3 hours weekly", (0, 3)),
        ("30 minutes weekly", (0.5, 0.5)),
        ("6-4 hours weekly", (4, 6)),
        ("Flexible, negotiated with manager", None),
        ("2 hours a day", None),
        ("", None),
    ],
)
def test_parse_hours(text, expected):
    hours = parse_hours(text)
    assert (hours.min, hours.max) == expected if expected else hours is None


def test_time_available_without_hours_warns():
    doc = "## Persona 4: Nurse\n\n### Competency Development Profile\n#### Contextual Constraints\n"
    result = parse_personas(doc + "- **Time Available:** When the ward allows\n", "t.md")
    assert result.personas[0].hours_per_week is None
    assert [(w.line, "no hours per week" in w.message) for w in result.warnings] == [(5, True)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a, b (c, d), e", ["a", "b (c, d)", "e"]),
        ("One thing. Another (x. Y) thing.", ["One thing", "Another (x. Y) thing"]),
        ("physio, OT, etc. Then more", ["physio", "OT", "etc.", "Then more"]),
        ("alpha; beta, and gamma", ["alpha", "beta", "gamma"]),
        ("", []),
        ("unbalanced ) paren, ok", ["unbalanced ) paren", "ok"]),
    ],
)
def test_split_items(text, expected):
    assert split_items(text) == expected


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "line", "fragment"),
    [
        ("# Personas\n\n## Persona X: Nurse\n", 3, "has no number"),
        ("## Persona: Nurse\n", 1, "has no number"),
        ("## Persona 5:\n\n### Role Context\n", 1, "has no title"),
        ("## Persona 5: ???\n", 1, "has no title"),
        ("# Title\n\nNo personas here.\n", 1, "no personas found"),
        ("", 1, "no personas found"),
        ("## Stage 3: Leaders\n\n### Persona 5: Nurse\n", 3, "is level 3"),
        ("## Persona 5: Nurse\n\n## Persona 5: Nurse\n", 3, "duplicate persona id 'p5-nurse'"),
    ],
)
def test_malformed_documents_raise_input_error_with_line(doc, line, fragment):
    with pytest.raises(InputError) as caught:
        parse_personas(doc, "bad.md")
    assert (caught.value.path, caught.value.line) == ("bad.md", line)
    assert fragment in caught.value.message
    assert str(caught.value).startswith(f"bad.md:{line}: ")


def test_undecodable_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.md"
    bad.write_bytes(b"## Persona 1: A\n\nok\n\xff\xfe broken\n")
    with pytest.raises(InputError, match=r"bad\.md:4: not valid UTF-8 \(byte 0xff\)"):
        load_personas([bad])


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        load_personas([tmp_path / "nope.md"])
    with pytest.raises(InputError, match=r"no \*\.md persona files"):
        load_personas([tmp_path])


def test_duplicate_ids_across_files(tmp_path):
    (tmp_path / "a.md").write_text("## Persona 1: Nurse\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("\n\n## Persona 1: Nurse\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_personas([tmp_path])
    assert str(caught.value).startswith(f"{tmp_path / 'b.md'}:3: duplicate persona id 'p1-nurse' (first at ")


# -- loading and finding ----------------------------------------------------------------------


def test_folder_loads_sorted_md_files(tmp_path):
    (tmp_path / "b.md").write_text(UNSEEN.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "a.md").write_text(SEED.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "notes.txt").write_text("## Persona 99: Ignored\n", encoding="utf-8")
    assert persona_files([tmp_path]) == [tmp_path / "a.md", tmp_path / "b.md"]
    assert [p.number for p in load_personas([tmp_path])] == [17, 18, 19, 20, 21, 22, 23]
    assert [p.number for p in load_personas([UNSEEN, SEED])] == [23, 17, 18, 19, 20, 21, 22]
    assert persona_files([tmp_path / "a.md", tmp_path]) == [tmp_path / "a.md", tmp_path / "b.md"]


def test_find_persona_by_id_or_number():
    assert find_persona([SEED], "p19-information-governance-lead").number == 19
    assert find_persona([SEED], "p19").id == "p19-information-governance-lead"
    assert find_persona([SEED], "20").number == 20
    with pytest.raises(InputError, match="no persona 'p99' in .*known ids: p17-assistant-director-of-finance"):
        find_persona([SEED], "p99")


# -- robustness -------------------------------------------------------------------------------

_JUNK = st.text(alphabet=st.sampled_from(list("#*-+:_`\\>|[]()0123456789 \t\r\n\x00\ufeff\u2028\u2019“”–Persona")))
_EDIT = st.one_of(
    st.tuples(st.just("delete"), st.integers(0, 10_000)),
    st.tuples(st.just("duplicate"), st.integers(0, 10_000)),
    st.tuples(st.just("swap"), st.integers(0, 10_000), st.integers(0, 10_000)),
    st.tuples(st.just("junk"), st.integers(0, 10_000), st.integers(0, 200), _JUNK),
    st.tuples(st.just("junk"), st.integers(0, 10_000), st.integers(0, 200), st.text(max_size=6)),
)
_DOCUMENTS = [SEED.read_text(encoding="utf-8"), UNSEEN.read_text(encoding="utf-8"), VARIANT]


def _mutate(text: str, edits: list[tuple]) -> str:
    lines = text.split("\n")
    for kind, index, *rest in edits:
        if not lines:
            break
        i = index % len(lines)
        if kind == "delete":
            del lines[i]
        elif kind == "duplicate":
            lines.insert(i, lines[i])
        elif kind == "swap":
            j = rest[0] % len(lines)
            lines[i], lines[j] = lines[j], lines[i]
        else:
            column = min(rest[0], len(lines[i]))
            lines[i] = lines[i][:column] + rest[1] + lines[i][column:]
    return "\n".join(lines)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=st.sampled_from(_DOCUMENTS), edits=st.lists(_EDIT, min_size=1, max_size=12))
def test_mutated_documents_parse_or_raise_input_error(document, edits):
    text = _mutate(document, edits)
    try:
        result = parse_personas(text, "m.md")
    except InputError as exc:
        assert exc.path == "m.md" and exc.line is not None and exc.line >= 1
        return
    assert result.personas
    assert all(isinstance(w.line, int) and w.line >= 1 for w in result.warnings)
    stray_escapes(text, "m.md")
    for source in split_personas(text, "m.md", warnings=[]):
        lint_persona(source, "m.md")


@settings(max_examples=50, deadline=None)
@given(position=st.integers(0, 20_000), junk=st.binary(min_size=1, max_size=4))
def test_corrupted_bytes_load_or_raise_input_error(position, junk):
    data = SEED.read_bytes()
    position %= len(data)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.md"
        path.write_bytes(data[:position] + junk + data[position:])
        try:
            assert load_personas([path])
        except InputError as exc:
            assert exc.path == str(path)
