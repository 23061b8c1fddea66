"""Output names made from scan ids (data from inside a possibly hostile file)."""
from xscreen.paths import MAX_STEM, output_stem


def test_output_stems_are_plain_names_inside_the_folder():
    taken: set[str] = set()
    names = [output_stem(n, taken) for n in
             ("/etc/passwd", "..", "../../x", "", "a.json", "C:\\win\\x", "con", "é\x00\n", "x" * 500)]
    assert names == ["etc_passwd", "scan", "x", "scan-2", "a_json", "C_win_x", "_con", "scan-3",
                     "x" * MAX_STEM]


def test_colliding_ids_get_a_suffix_case_insensitively():
    taken: set[str] = set()
    got = [output_stem(n, taken) for n in ("bag02_handgun", "./bag02_handgun", "BAG02_HANDGUN",
                                            "bag02_handgun-2", "bag02_handgun")]
    assert got == ["bag02_handgun", "bag02_handgun-2", "BAG02_HANDGUN-3", "bag02_handgun-2-2",
                   "bag02_handgun-4"]
    assert len({g.casefold() for g in got}) == len(got)
