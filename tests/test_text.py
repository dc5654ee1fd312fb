import pytest

from monitor.text import fold, like_pattern


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Huyện Đình Lập", "huyen dinh lap"),
        ("Lộc Bình", "loc binh"),
        ("  Thị   trấn Na Dương ", "thi tran na duong"),
        ("ĐỒNG ĐĂNG", "dong dang"),
        ("Xã Hữu Lũng", "xa huu lung"),
        ("plain", "plain"),
    ],
)
def test_it_folds_vietnamese_to_bare_lower_case(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_decomposed_input_folds_like_composed_input() -> None:
    import unicodedata

    assert fold(unicodedata.normalize("NFD", "Đình Lập")) == fold("Đình Lập") == "dinh lap"


def test_like_pattern_escapes_wildcards_the_user_typed() -> None:
    assert like_pattern("50%_off") == "%50\\%\\_off%"
    assert like_pattern("Đình  Lập") == "%dinh%lap%"
