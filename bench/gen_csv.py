"""Deterministic generator of a realistic contacts CSV for the import benchmark.

    python bench/gen_csv.py --rows 1000000 --out bench/out/contacts-1000000.csv [--seed 20240601]

The same ``--rows`` and ``--seed`` always give the same bytes. Rows are written one at a time (memory stays
constant whatever the size), and what the file should import to is counted on the way (``GenStats``):

- real-looking people (some accented names), companies ("Northwind Analytics, Inc."), company domains with one
  email format per company, ~12% personal (free-mail) addresses, titles, phones in several national formats,
  LinkedIn URLs, websites, tags and a lead source (an unknown column: it becomes a custom field);
- ~2% duplicate rows: an earlier contact's email again (sometimes in another case, padded, or as
  ``Name <email>``), with other details from "another source" - they merge into the existing contact;
- ~1% invalid rows: ~0.6% with a broken email, ~0.4% with a job title over the 200-character limit;
- quoted fields with commas ("VP, Sales", "Acme, Inc.", "saas,enterprise") and a few escaped quotes.

Every valid email is unique by construction (contact number -> a bijection onto (first name, last name,
company)), so the number of distinct valid emails is known without remembering them.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import random
import re
import sys
import time
import unicodedata
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

DEFAULT_SEED = 20240601


def _split(text: str) -> tuple[str, ...]:
    """``"a | b\n c"`` -> ``("a", "b", "c")``: items end at ``|`` or at a line end."""
    return tuple(word.strip() for word in re.split(r"[|\n]", text) if word.strip())


HEADER = [
    "Email",
    "First Name",
    "Last Name",
    "Company",
    "Job Title",
    "Phone",
    "LinkedIn URL",
    "Website",
    "Tags",
    "Lead Source",
]

FIRST_NAMES = _split(
    """
    James | Mary | John | Patricia | Robert | Jennifer | Michael | Linda | William | Elizabeth | David
    Barbara | Richard | Susan | Joseph | Jessica | Thomas | Sarah | Charles | Karen | Christopher
    Nancy | Daniel | Lisa | Matthew | Betty | Anthony | Margaret | Mark | Sandra | Donald | Ashley
    Steven | Kimberly | Paul | Emily | Andrew | Donna | Joshua | Michelle | Kenneth | Carol | Kevin
    Amanda | Brian | Melissa | George | Deborah | Timothy | Stephanie | Ronald | Rebecca | Jason
    Sharon | Edward | Laura | Jeffrey | Cynthia | Ryan | Kathleen | Jacob | Amy | Gary | Angela
    Nicholas | Shirley | Eric | Anna | Jonathan | Brenda | Stephen | Pamela | Larry | Emma | Justin
    Nicole | Scott | Helen | Brandon | Samantha | Benjamin | Katherine | Samuel | Christine | Gregory
    Debra | Alexander | Rachel | Frank | Carolyn | Raymond | Janet | Patrick | Catherine | Jack | Maria
    Dennis | Heather | Jerry | Diane | Priya | Arjun | Wei | Mei | Hiroshi | Yuki | Olumide | Chiamaka
    Mohammed | Fatima | José | Zoë | François | Björn | Søren | Chloé | Mathéo | Léa | Jürgen | Inès
    Lukas | Sofia | Mateo | Valentina | Noah | Mia | Liam | Olivia | Ethan | Ava
    """
)
LAST_NAMES = _split(
    """
    Smith | Johnson | Williams | Brown | Jones | Garcia | Miller | Davis | Rodriguez | Martinez
    Hernandez | Lopez | Gonzalez | Wilson | Anderson | Thomas | Taylor | Moore | Jackson | Martin | Lee
    Perez | Thompson | White | Harris | Sanchez | Clark | Ramirez | Lewis | Robinson | Walker | Young
    Allen | King | Wright | Scott | Torres | Nguyen | Hill | Flores | Green | Adams | Nelson | Baker
    Hall | Rivera | Campbell | Mitchell | Carter | Roberts | Gomez | Phillips | Evans | Turner | Diaz
    Parker | Cruz | Edwards | Collins | Reyes | Stewart | Morris | Morales | Murphy | Cook | Rogers
    Gutierrez | Ortiz | Morgan | Cooper | Peterson | Bailey | Reed | Kelly | Howard | Ramos | Kim | Cox
    Ward | Richardson | Watson | Brooks | Chavez | Wood | James | Bennett | Gray | Mendoza | Ruiz
    Hughes | Price | Alvarez | Castillo | Sanders | Patel | Myers | Long | Ross | Foster | Jimenez
    Powell | Jenkins | Perry | Russell | Sullivan | Bell | Coleman | Butler | Henderson | Barnes
    Fisher | Vasquez | Simmons | Romero | Jordan | Patterson | Alexander | Hamilton | Graham | Reynolds
    Griffin | Wallace | Moreno | West | Cole | Hayes | Bryant | Herrera | Gibson | Ellis | Tran | Medina
    Aguilar | Stevens | O'Brien | O'Connor | McCarthy | van der Berg | De Vries | Müller | Schröder
    Dubois | Lefèvre | Rossi | Bianchi | Kowalski | Nowak | Yamamoto | Tanaka | Chen | Wang | Singh
    Kumar | Okafor | Adeyemi | Haddad | Svensson | Johansson | Novák | Fernández | Gonçalves
    Østergaard
    """
)
COMPANY_HEADS = _split(
    """
    North | Blue | Bright | Silver | Red | Green | Iron | Clear | Swift | Summit | Harbor | Pine | Cedar
    Granite | Copper | Golden | Maple | River | Stone | Sun | Moon | Star | Cloud | Ocean | Eagle
    Falcon | Quantum | Vertex | Apex | Nova | Zen | Lumen | Atlas | Orion | Polar | Crimson | Amber
    Coral | Velvet | Echo
    """
)
COMPANY_TAILS = _split(
    """
    wind | bridge | field | path | line | point | wave | forge | leaf | works | gate | mark | scale
    stack | flow | base | craft | hub | sight | logic | grid | spark | peak | shift | vale | core | dock
    loop | nest | ridge | trail | yard | beam | cast | dale | fort | glen | haven | mill | port
    """
)
COMPANY_SUFFIXES = (
    "",
    "",
    "",
    " Inc.",
    ", Inc.",
    " LLC",
    ", LLC",
    " Ltd",
    " GmbH",
    " SAS",
    " Labs",
    " Analytics",
    " Technologies",
    " Group",
    " Partners",
    " Systems",
    " & Co.",
    " Software",
    " Health",
    " Capital",
)
TLDS = ("com", "com", "com", "com", "com", "com", "io", "co", "de", "fr", "co.uk", "ai", "net")
EMAIL_FORMATS = ("{f}.{l}", "{f}.{l}", "{f}.{l}", "{f}.{l}", "{f}_{l}", "{f}-{l}", "{l}.{f}")
FREE_MAIL = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com")
TITLES = _split(
    """
    CEO | CTO | CFO | COO | Founder | Co-Founder & CEO | VP, Sales | VP, Marketing | VP of Engineering
    Director, Product Marketing | Director of Operations | Head of Growth | Head of Data
    Head of People | Marketing Manager | Senior Marketing Manager | Sales Manager | Account Executive
    Senior Account Executive | Sales Development Representative | Business Development Manager
    Customer Success Manager | Product Manager | Senior Product Manager | Software Engineer
    Senior Software Engineer | Staff Engineer | Engineering Manager | Data Scientist | Data Analyst
    Operations Manager | HR Manager | Recruiter | Talent Acquisition Lead | Office Manager
    Financial Analyst | Controller | Procurement Manager | IT Manager | Solutions Architect
    Chief Revenue Officer | Chief Marketing Officer | General Counsel | Partner | Consultant
    Senior Consultant | Project Manager | Designer | UX Researcher | Chief "Happiness" Officer
    Directeur Commercial | Geschäftsführer
    """
)
TAGS = _split(
    """
    enterprise | smb | mid-market | saas | fintech | healthcare | newsletter | webinar-2024 | trade show
    partner | vip | churned | trial | event: saastr | q3-campaign | inbound | outbound | decision maker
    champion | emea | apac | north america
    """
)
LEAD_SOURCES = _split(
    """
    Website | Website | Webinar | Trade Show | Referral | LinkedIn Ads | Google Ads | Cold Outreach
    Partner | Content Download | Event | Import - Apollo | Import - ZoomInfo
    """
)
US_AREAS = (212, 415, 646, 312, 617, 206, 512, 303, 404, 305, 213, 718, 202, 214, 503)

INVALID_EMAIL_RATE = 0.006
INVALID_TITLE_RATE = 0.004
DUPLICATE_RATE = 0.02
PERSONAL_PERCENT = 12
TITLE_LIMIT = 200  # leadpipe.normalize.LIMITS.title


_TRANSLIT = str.maketrans({"ø": "o", "Ø": "O", "ß": "ss", "æ": "ae", "Æ": "Ae", "ł": "l", "Ł": "L"})


def slug(name: str) -> str:
    """``"Lefèvre"`` -> ``"lefevre"``, ``"O'Brien"`` -> ``"obrien"``: what people put in email addresses."""
    folded = unicodedata.normalize("NFKD", name.translate(_TRANSLIT))
    folded = folded.encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z]", "", folded)


def _mix(n: int) -> int:
    """A cheap deterministic hash of an int (for per-company and per-contact choices)."""
    n = (n * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    n ^= n >> 29
    return (n * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF


@dataclass(frozen=True, slots=True)
class Company:
    name: str
    domain: str
    email_format: str


@dataclass(frozen=True, slots=True)
class Person:
    first: str
    last: str
    company: Company
    email: str


@dataclass
class GenStats:
    rows: int = 0
    fresh: int = 0  # rows with a new, valid email (= distinct valid emails)
    duplicates: int = 0  # valid rows repeating an earlier valid email
    invalid_email: int = 0
    invalid_title: int = 0
    quoted_rows: int = 0  # rows with at least one quoted field
    tags: int = 0  # tag values written
    bytes: int = 0
    seconds: float = 0.0

    @property
    def invalid(self) -> int:
        return self.invalid_email + self.invalid_title

    @property
    def valid_rows(self) -> int:
        return self.fresh + self.duplicates

    @property
    def distinct_valid_emails(self) -> int:
        return self.fresh

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "invalid": self.invalid, "distinct_valid_emails": self.distinct_valid_emails}


class ContactGenerator:
    """Rows of a contacts CSV (header first). Same seed, same rows."""

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.firsts = [(n, slug(n)) for n in FIRST_NAMES]
        self.lasts = [(n, slug(n)) for n in LAST_NAMES]
        for names in (self.firsts, self.lasts):
            slugs = [s for _, s in names]
            assert len(set(slugs)) == len(slugs), "name slugs must be unique"
            assert all(slugs), "name slugs must not be empty"
        self.companies = self._companies()
        self.space = len(self.firsts) * len(self.lasts) * len(self.companies)
        # contact number -> (first, last, company) through an affine bijection of [0, space)
        multiplier = 1_000_003 + 2 * (seed % 100_000)
        while math.gcd(multiplier, self.space) != 1:
            multiplier += 2
        self.multiplier = multiplier
        self.offset = _mix(seed) % self.space
        self.stats = GenStats()

    def _companies(self) -> list[Company]:
        out = []
        for i in range(len(COMPANY_HEADS) * len(COMPANY_TAILS)):
            h = _mix(i ^ self.seed)
            head = COMPANY_HEADS[i % len(COMPANY_HEADS)]
            tail = COMPANY_TAILS[i // len(COMPANY_HEADS)]
            core = head + tail
            suffix = COMPANY_SUFFIXES[h % len(COMPANY_SUFFIXES)]
            word = suffix.strip(" ,.&") if suffix.strip(" ,.&") in {"Labs", "Analytics", "Software", "Health"} else ""
            domain = f"{slug(core + word)}.{TLDS[(h >> 8) % len(TLDS)]}"
            out.append(Company(core + suffix, domain, EMAIL_FORMATS[(h >> 16) % len(EMAIL_FORMATS)]))
        assert len({c.domain for c in out}) == len(out), "company domains must be unique"
        return out

    def person(self, number: int) -> Person:
        """Contact number ``number``: valid contacts count up from 0, invalid rows down from the top."""
        m = (number * self.multiplier + self.offset) % self.space
        fi, rest = m % len(self.firsts), m // len(self.firsts)
        li, ci = rest % len(self.lasts), rest // len(self.lasts)
        (first, f), (last, ln), company = self.firsts[fi], self.lasts[li], self.companies[ci]
        if _mix(m) % 100 < PERSONAL_PERCENT:
            email = f"{f}.{ln}{ci}@{FREE_MAIL[ci % len(FREE_MAIL)]}"  # the company index keeps it unique
        else:
            email = company.email_format.format(f=f, l=ln) + "@" + company.domain
        return Person(first, last, company, email)

    # ------------------------------------------------------------------------------------------ fields

    def _phone(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            return ""
        n = rng.randrange(10000)
        kind = rng.randrange(10)
        if kind < 5:
            area = rng.choice(US_AREAS)
            phone = rng.choice(
                (
                    f"+1 ({area}) 555-{n:04d}",
                    f"{area}-555-{n:04d}",
                    f"({area}) 555-{n:04d}",
                    f"+1 {area} 555 {n:04d}",
                )
            )
        elif kind < 7:
            phone = f"+44 20 7946 {n:04d}"
        elif kind < 9:
            phone = f"+33 1 {rng.randrange(10, 99)} {rng.randrange(10, 99)} {n // 100:02d} {n % 100:02d}"
        else:
            phone = f"+49 30 {rng.randrange(1_000_000, 9_999_999)}"
        if rng.random() < 0.05:
            phone += f" ext. {rng.randrange(10, 9999)}"
        return phone

    def _linkedin(self, person: Person) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            return ""
        handle = f"{slug(person.first)}-{slug(person.last)}-{rng.randrange(16**6):06x}"
        return rng.choice(
            (
                f"https://www.linkedin.com/in/{handle}",
                f"https://www.linkedin.com/in/{handle}/",
                f"linkedin.com/in/{handle}",
                f"https://uk.linkedin.com/in/{handle}",
                f"http://www.linkedin.com/in/{handle}?trk=profile",
            )
        )

    def _website(self, person: Person) -> str:
        rng = self.rng
        if rng.random() < 0.3:
            return ""
        d = person.company.domain
        return rng.choice((f"https://www.{d}", d, f"http://{d}/", f"www.{d}", f"https://{d}/about"))

    def _tags(self) -> str:
        rng = self.rng
        r = rng.random()
        if r < 0.45:
            count = 0
        elif r < 0.80:
            count = 1
        elif r < 0.95:
            count = 2
        else:
            count = 3
        tags = rng.sample(TAGS, count)
        self.stats.tags += count
        return (", " if rng.random() < 0.2 else ",").join(tags) if count < 3 else "; ".join(tags)

    def _title(self) -> str:
        r = self.rng.random()
        if r < 0.08:
            return ""
        if r < 0.09:
            return "n/a"
        return self.rng.choice(TITLES)

    def _long_title(self) -> str:
        parts = [self.rng.choice(TITLES)]
        while len(", ".join(parts)) <= TITLE_LIMIT:
            parts.append(self.rng.choice(TITLES))
        return ", ".join(parts)

    def _row(self, person: Person, email: str, title: str) -> list[str]:
        rng = self.rng
        first = person.first if rng.random() > 0.03 else ""
        last = person.last if rng.random() > 0.05 else ""
        company = person.company.name if rng.random() > 0.03 else ""
        source = rng.choice(LEAD_SOURCES) if rng.random() > 0.1 else ""
        return [
            email,
            first,
            last,
            company,
            title,
            self._phone(),
            self._linkedin(person),
            self._website(person),
            self._tags(),
            source,
        ]

    def _bad_email(self, email: str) -> str:
        local, _, domain = email.partition("@")
        kind = self.rng.randrange(7)
        if kind == 0:
            return local + domain  # no @
        if kind == 1:
            return email.replace("@", "@@")
        if kind == 2:
            return f"{local}@{domain.split('.')[0]}"  # no top-level domain
        if kind == 3:
            return email.replace("@", " @")  # a space
        if kind == 4:
            return f"{local}@{domain.replace('.', '..', 1)}"
        if kind == 5:
            return ""
        return "#N/A"

    def _variant(self, person: Person) -> str:
        """An earlier contact's email as another source might spell it."""
        kind = self.rng.randrange(4)
        if kind == 0:
            return person.email
        if kind == 1:
            return ".".join(p.capitalize() for p in person.email.split("."))
        if kind == 2:
            return f"  {person.email.upper()} "
        return f"{person.first} {person.last} <{person.email}>"

    # ------------------------------------------------------------------------------------------ rows

    def rows(self, n: int) -> Iterator[list[str]]:
        """The header, then ``n`` data rows."""
        yield list(HEADER)
        rng, stats = self.rng, self.stats
        for _ in range(n):
            stats.rows += 1
            r = rng.random()
            if r < INVALID_EMAIL_RATE:
                stats.invalid_email += 1
                person = self.person(self.space - stats.invalid)
                yield self._row(person, self._bad_email(person.email), self._title())
            elif r < INVALID_EMAIL_RATE + INVALID_TITLE_RATE:
                stats.invalid_title += 1
                person = self.person(self.space - stats.invalid)
                yield self._row(person, person.email, self._long_title())
            elif r < INVALID_EMAIL_RATE + INVALID_TITLE_RATE + DUPLICATE_RATE and stats.fresh:
                stats.duplicates += 1
                person = self.person(rng.randrange(stats.fresh))
                yield self._row(person, self._variant(person), self._title())
            else:
                person = self.person(stats.fresh)
                stats.fresh += 1
                yield self._row(person, person.email, self._title())


class _CountingWriter:
    """A text sink that counts the UTF-8 bytes written and whether the last row needed quotes."""

    def __init__(self, fh: object) -> None:
        self.fh = fh
        self.bytes = 0
        self.quoted = 0

    def write(self, text: str) -> int:
        self.bytes += len(text.encode("utf-8"))
        if '"' in text:
            self.quoted += 1
        return self.fh.write(text)  # type: ignore[attr-defined,no-any-return]


def write_csv(path: str | Path, rows: int, *, seed: int = DEFAULT_SEED) -> GenStats:
    """Write ``rows`` data rows (plus the header) to ``path``, streaming. Returns what the file contains."""
    started = time.perf_counter()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = ContactGenerator(seed)
    with open(path, "w", encoding="utf-8", newline="", buffering=1024 * 1024) as fh:
        sink = _CountingWriter(fh)
        writer = csv.writer(sink, lineterminator="\r\n")  # RFC 4180 / Excel line endings
        for row in generator.rows(rows):
            writer.writerow(row)
    stats = generator.stats
    stats.bytes = sink.bytes
    stats.quoted_rows = sink.quoted
    stats.seconds = round(time.perf_counter() - started, 2)
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="data rows to write (default 100000)")
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    stats = write_csv(args.out, args.rows, seed=args.seed)
    json.dump({"path": str(args.out), **stats.as_dict()}, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
