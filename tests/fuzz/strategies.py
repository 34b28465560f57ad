"""What a hostile client sends: text of every kind, values where none belong, JSON of any shape."""

import string

from hypothesis import strategies as st

NASTY = [
    "", " ", "\x00", "a\x00b", "\t\r\n", "' OR 1=1 --", '"; DROP TABLE billing_order; --', "<script>alert(1)</script>",
    "{{ settings.SECRET_KEY }}", "{% debug %}", "%s%s%s%n", "../../../../etc/passwd", "\u202eevil", "\ufeff",
    "☃", "𝕏" * 50, "NaN", "Infinity", "-Infinity", "-1", "0", "1e309", "0x41", "null", "true", "[]", "{}",
    "A" * 10_000, "x" * 100_000, "@", "a@b", "a@b.c" * 60, "ana@example.com\r\nBcc: all@example.com",
    "ANA@EXAMPLE.COM", "ana@exa mple.com", "ana@例え.jp", "ana+tag@example.com", "ana@example.com\x00",
    "4242", "424", "42424", "４２４２", "00000000-0000-0000-0000-000000000000", "on", "off", "yes",
]

# Text a browser could send: any Unicode that UTF-8 can carry (no lone surrogates).
any_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=300)
# PostgreSQL refuses a NUL in text: the likeliest 500 left wherever input reaches a column unchecked.
with_nul = st.builds(lambda before, after: f"{before}\x00{after}", any_text, any_text)
hostile_text = st.one_of(any_text, st.sampled_from(NASTY), with_nul, st.emails(), st.integers().map(str),
                         st.uuids().map(str))
# A form value: usually one string, sometimes several (a repeated field), as a QueryDict carries them.
form_value = st.one_of(hostile_text, hostile_text, st.lists(hostile_text, min_size=2, max_size=3))


def form_data(fields, *, always=(), **valid):
    """Any subset of `fields` (those in `always` every time; and an unknown one), each hostile or, for
    those in `valid`, a plausible value two times in three (so valid submissions get far too)."""
    values = {name: (st.one_of(valid[name], valid[name], form_value) if name in valid else form_value)
              for name in fields}
    return st.fixed_dictionaries({name: values.pop(name) for name in always},
                                 optional={**values, "unexpected": form_value})


# A path segment for a token (no "/", "?" or "#", which would be another URL): random or near-valid.
token_text = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="/?#%\\"), min_size=1, max_size=200),
    st.text(alphabet=string.ascii_letters + string.digits + ":-_=", min_size=1, max_size=120),
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30),
                         st.floats(allow_nan=False), hostile_text)
json_values = st.recursive(json_scalars, lambda children: st.one_of(
    st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)), max_leaves=12)
