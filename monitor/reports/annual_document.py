"""The annual results report as a document: the heading of an administrative document, the body's sentences
generated from the figures, the signature block and the appendix tables.

One document, several formats: `annual_docx`, `annual_html` (and the PDF from it) and `annual_xlsx` each
write this same `AnnualDocument`, so the figures never disagree between them. The layout follows Nghị định
30/2020/NĐ-CP, Phụ lục I (the parts of an administrative document); the body follows the plan's items:
dissemination, building and converting the commune radio systems, management and maintenance, bulletin
boards, training, the yearly review and the budget basis, then difficulties and proposals, which the officer
writes (the places are marked). The text is Vietnamese: it is an official document of a Vietnamese office.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from monitor.config import Settings
from monitor.health.states import FaultCode, fault_label
from monitor.i18n import format_date, local_date
from monitor.inventory.choices import DeviceKind
from monitor.reports.annual import TARGET_IP_2025, TARGET_IP_2030, AnnualFigures
from monitor.reports.review import ReplaceReason, kind_label
from monitor.reports.uptime import METHOD_VI, UptimeRow
from monitor.tickets.export import TICKET_KINDS, ticket_kind_label

ColumnKind = Literal["text", "int", "percent", "hours", "vnd", "number", "date"]
SUBJECT = (
    "Kết quả thực hiện Đề án nâng cao hiệu quả hoạt động thông tin cơ sở dựa trên ứng dụng công nghệ "
    "thông tin năm {year}"
)
TO_WRITE = "[Đơn vị bổ sung: {what}]"
TOTAL = "Tổng cộng"


# --- numbers as Vietnamese documents write them ----------------------------------------------------


def vn_int(value: float | int | None) -> str:
    """1234567 -> '1.234.567' (Vietnamese groups thousands with dots)."""
    if value is None:
        return "–"
    return f"{round(value):,}".replace(",", ".")


def vn_decimal(value: float | None, digits: int = 1) -> str:
    """1234.5 -> '1.234,5'."""
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")


def vn_percent(share: float | None, digits: int = 2) -> str:
    """0.99641 -> '99,64%'."""
    return "–" if share is None else f"{vn_decimal(share * 100, digits)}%"


def vn_hours(seconds: float | None) -> str:
    return "–" if seconds is None else vn_decimal(seconds / 3600, 1)


def date_line(place: str, day: date) -> str:
    """'Lạng Sơn, ngày 05 tháng 12 năm 2026': a zero before days under 10 and months 1 and 2 (NĐ 30/2020)."""
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"{place}, ngày {day.day:02d} tháng {month} năm {day.year}"


def _upper_first(text: str) -> str:
    """'trên địa bàn Cao Lộc' -> 'Trên địa bàn Cao Lộc' (str.capitalize would lower the names)."""
    return text[:1].upper() + text[1:]


def _short_place(name: str) -> str:
    """'Huyện Cao Lộc' -> 'Cao Lộc' (the date line names the place, not its type)."""
    for prefix in ("Thành phố ", "Huyện ", "Thị xã ", "Khu vực bảo trì ", "Khu vực "):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


# --- the document --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    label: str
    kind: ColumnKind = "text"


@dataclass(slots=True)
class Table:
    """A table of the report: `rows` hold raw values (numbers stay numbers for Excel); `total` is bold."""

    key: str
    title: str
    columns: Sequence[Column]
    rows: Sequence[Sequence[Any]]
    total: Sequence[Any] | None = None
    note: str = ""

    def shown(self, value: Any, kind: ColumnKind) -> str:
        """A cell as people read it in the DOCX and the HTML."""
        if value is None or value == "":
            return "–" if kind != "text" else ""
        if kind == "int":
            return vn_int(value)
        if kind == "vnd":
            return vn_int(value)
        if kind == "percent":
            return vn_percent(value)
        if kind == "hours":
            return vn_hours(value)
        if kind == "number":
            return vn_decimal(value, 1)
        if kind == "date":
            return format_date(value)
        return str(value)


@dataclass(slots=True)
class Paragraph:
    """A paragraph of the body: `heading` (I., 1.), `text`, `to_write` (a place the officer fills in, italic)."""

    text: str
    style: Literal["heading", "subheading", "text", "to_write"] = "text"


Block = Paragraph | Table


@dataclass(slots=True)
class AnnualDocument:
    """Everything printed, in order: heading, body, signature, recipients, appendix."""

    year: int
    parent_body: str
    body: str
    number: str
    place_date: str
    title: str
    subject: str
    blocks: list[Block]
    closing: str
    signer: str
    recipients: list[str]
    appendix: list[Table] = field(default_factory=list)
    method: str = METHOD_VI
    scope_name: str = ""
    period_text: str = ""

    @property
    def tables(self) -> list[Table]:
        """Every table, in the body and in the appendix, in order."""
        return [block for block in self.blocks if isinstance(block, Table)] + self.appendix


def _cause_name(kind: str) -> str:
    """What opened a ticket: a device's fault (health's words), a commune's report or an inspection (tickets')."""
    return ticket_kind_label(kind) if kind in TICKET_KINDS else fault_label(kind, "vi")


def _availability(row: UptimeRow | None) -> float | None:
    return None if row is None else row.figures.seconds.availability


def _met(share: float | None, target: float) -> str:
    if share is None:
        return "chưa có số liệu"
    return "đạt mục tiêu" if share >= target - 1e-9 else "chưa đạt mục tiêu"


def _uptime_columns(first: str) -> list[Column]:
    return [
        Column("Mã"),
        Column(first),
        Column("Số thiết bị", "int"),
        Column("Tỷ lệ hoạt động", "percent"),
        Column("Số lần mất kết nối", "int"),
        Column("Mất kết nối (giờ)", "hours"),
        Column("Lần mất lâu nhất (giờ)", "hours"),
        Column("Không rõ trạng thái (giờ)", "hours"),
        Column("Bảo trì (giờ)", "hours"),
    ]


def _uptime_line(row: UptimeRow, name: str | None = None) -> list[Any]:
    s = row.figures.seconds
    return [
        "" if name == TOTAL else row.key,
        name or row.name,
        row.figures.devices,
        s.availability,
        row.figures.outages.count,
        s.get("down"),
        row.figures.outages.longest_s,
        s.get("unknown"),
        s.get("maintenance"),
    ]


class _Builder:
    """Writes the body from the figures, item by item of the plan."""

    def __init__(self, figures: AnnualFigures, settings: Settings) -> None:
        self.f = figures
        self.settings = settings
        self.blocks: list[Block] = []
        self.appendix: list[Table] = []
        province = figures.is_province
        self.where = "toàn tỉnh" if province else f"trên địa bàn {_short_place(figures.district_name or '')}"
        name = figures.district_name or ""
        #: 'trên địa bàn tỉnh' / 'trên địa bàn huyện Cao Lộc', for the opening and closing sentences
        self.scope_phrase = "trên địa bàn tỉnh" if province else f"trên địa bàn {name[:1].lower() + name[1:]}"

    def heading(self, text: str) -> None:
        self.blocks.append(Paragraph(text, "heading"))

    def subheading(self, text: str) -> None:
        self.blocks.append(Paragraph(text, "subheading"))

    def text(self, text: str) -> None:
        self.blocks.append(Paragraph(text))

    def to_write(self, what: str) -> None:
        self.blocks.append(Paragraph(TO_WRITE.format(what=what), "to_write"))

    def annex(self, table: Table) -> str:
        self.appendix.append(table)
        return f"Phụ lục {len(self.appendix)}"

    def submissions(self) -> None:
        """The province's report says which districts' own reports it sums up, and who has not sent one yet."""
        f = self.f
        if not f.is_province or not f.submissions:
            return
        sent = [row for row in f.submissions if row.current is not None]
        missing = [row.name for row in f.submissions if row.current is None]
        sentence = (
            f"Đến ngày {format_date(f.made_at)}, {vn_int(len(sent))}/{vn_int(len(f.submissions))} huyện, thành phố đã "
            f"gửi báo cáo kết quả năm {f.period.year}"
        )
        sentence += f"; chưa gửi: {', '.join(missing)}." if missing else "."
        self.text(sentence)
        self.annex(
            Table(
                "submissions",
                "Tình hình gửi báo cáo của các huyện, thành phố",
                [
                    Column("Mã"),
                    Column("Huyện, thành phố"),
                    Column("Hạn gửi", "date"),
                    Column("Tình trạng"),
                    Column("Ngày gửi", "date"),
                ],
                [
                    [
                        row.district_code,
                        row.name,
                        row.due,
                        row.status.label_vi,
                        None if row.current is None else local_date(row.current.uploaded_at),
                    ]
                    for row in f.submissions
                ],
            )
        )

    # --- I.1 ---
    def dissemination(self) -> None:
        f = self.f
        self.subheading("1. Công tác tuyên truyền, phổ biến")
        clusters = f.devices_by_kind.get(DeviceKind.RADIO_CLUSTER.value, 0)
        boards = f.devices_by_kind.get(DeviceKind.BULLETIN_BOARD.value, 0)
        self.text(
            f"Hệ thống thông tin cơ sở {self.where} hiện có {vn_int(clusters)} cụm loa truyền thanh ứng dụng công "
            f"nghệ thông tin - viễn thông và {vn_int(boards)} bảng tin điện tử công cộng tại "
            f"{vn_int(f.coverage.communes)} xã, phường, thị trấn; toàn bộ được giám sát tự động, liên tục, sự cố "
            "được ghi nhận và giao xử lý qua phiếu sửa chữa."
        )
        self.to_write("các hoạt động tuyên truyền, phổ biến Đề án trong năm; số tin, bài đã phát trên hệ thống.")

    # --- I.2 ---
    def radio_systems(self) -> None:
        f, c = self.f, self.f.coverage
        self.subheading("2. Xây dựng, chuyển đổi hệ thống đài truyền thanh cấp xã")
        remaining = c.communes - c.ip_based
        sentence = (
            f"{_upper_first(self.where)} có {vn_int(c.with_radio)}/{vn_int(c.communes)} xã, phường, thị trấn có đài "
            f"truyền thanh ({vn_percent(c.share_radio)}; mục tiêu 100%), trong đó {vn_int(c.ip_based)} xã có đài "
            f"truyền thanh ứng dụng công nghệ thông tin - viễn thông, đạt {vn_percent(c.share_ip)}: "
            f"{_met(c.share_ip, TARGET_IP_2025)} 80% đến năm 2025"
        )
        if remaining > 0:
            sentence += f"; còn {vn_int(remaining)} xã cần đầu tư, chuyển đổi để đạt mục tiêu 100% đến năm 2030."
        else:
            sentence += f" và {_met(c.share_ip, TARGET_IP_2030)} 100% đến năm 2030."
        self.text(sentence)
        if c.legacy_standing:
            self.text(
                f"Còn {vn_int(c.legacy_standing)} xã vẫn duy trì hệ thống truyền thanh hữu tuyến hoặc vô tuyến FM "
                "cũ; các hệ thống này xuống cấp, cần được thay thế hoặc thanh lý theo lộ trình của Đề án."
            )
        rows: list[Sequence[Any]]
        if f.is_province:
            names = dict(f.districts)
            rows = [
                [
                    code,
                    names.get(code, code),
                    v.communes,
                    v.with_radio,
                    v.share_radio,
                    v.ip_based,
                    v.share_ip,
                    v.legacy_standing,
                ]
                for code, v in sorted(f.coverage_by_district.items())
            ]
            first = "Huyện, thành phố"
        else:
            rows = [
                [
                    commune.code,
                    commune.name,
                    1,
                    int(commune.has_radio),
                    1.0 if commune.has_radio else 0.0,
                    int(commune.ip_based),
                    1.0 if commune.ip_based else 0.0,
                    int(commune.legacy),
                ]
                for commune in f.review.communes
            ]
            first = "Xã, phường, thị trấn"
        total = ["", TOTAL, c.communes, c.with_radio, c.share_radio, c.ip_based, c.share_ip, c.legacy_standing]
        label = self.annex(
            Table(
                "coverage",
                "Đài truyền thanh cấp xã so với mục tiêu của Đề án",
                [
                    Column("Mã"),
                    Column(first),
                    Column("Số xã", "int"),
                    Column("Có đài truyền thanh", "int"),
                    Column("Tỷ lệ", "percent"),
                    Column("Ứng dụng CNTT - VT", "int"),
                    Column("Tỷ lệ CNTT - VT", "percent"),
                    Column("Còn hệ thống cũ", "int"),
                ],
                rows,
                total,
            )
        )
        self.text(f"Chi tiết tại {label}.")

    # --- I.3 ---
    def operation(self) -> None:
        f = self.f
        total = f.uptime_by_district.total
        s = total.figures.seconds
        self.subheading("3. Quản lý, vận hành, bảo trì hệ thống")
        parts = [
            f"Tỷ lệ hoạt động bình quân của các thiết bị {self.where} từ ngày {format_date(f.period.first)} đến ngày "
            f"{format_date(f.period.last)} đạt {vn_percent(s.availability)}"
        ]
        kinds = []
        for kind in (DeviceKind.RADIO_CLUSTER, DeviceKind.BULLETIN_BOARD, DeviceKind.STATION_CONTROLLER):
            row = f.kind_row(kind.value)
            if row is not None and row.figures.devices:
                kinds.append(f"{kind.label_vi.lower()} {vn_percent(_availability(row))}")
        if kinds:
            parts.append(" (" + "; ".join(kinds) + ")")
        parts.append(
            f". Trong kỳ ghi nhận {vn_int(total.figures.outages.count)} lần thiết bị mất kết nối, lần dài nhất "
            f"{vn_hours(total.figures.outages.longest_s)} giờ. Thời gian hệ thống giám sát không quan sát được thiết "
            f"bị ({vn_hours(s.get('unknown'))} giờ-thiết bị) được tính riêng, không tính là mất kết nối; thời gian "
            f"bảo trì theo kế hoạch ({vn_hours(s.get('maintenance'))} giờ-thiết bị) không tính vào tỷ lệ."
        )
        self.text("".join(parts))

        sla = f.sla_by_district.total.figures
        sentence = (
            f"Đã mở {vn_int(sla.opened)} phiếu sửa chữa (tự động từ hệ thống giám sát và do cơ sở báo hỏng), đã khắc "
            f"phục {vn_int(sla.resolved)} phiếu; thời gian tiếp nhận trung bình {vn_hours(sla.mtta_s)} giờ, thời gian "
            f"khắc phục trung bình {vn_hours(sla.mttr_s)} giờ; {vn_int(sla.breached)} phiếu "
            f"({vn_percent(sla.breach_rate)}) quá thời hạn xử lý"
        )
        if sla.reopened:
            sentence += f"; {vn_int(sla.reopened)} phiếu phải mở lại do sự cố tái diễn"
        self.text(sentence + ".")
        causes = [line for line in f.incidents if line.tickets][:4]
        if causes:
            listed = ", ".join(f"{_cause_name(line.kind).lower()} ({vn_int(line.tickets)} phiếu)" for line in causes)
            self.text(f"Nguyên nhân chủ yếu: {listed}.")
        worst = [row for row in f.worst_communes if (_availability(row) or 1.0) < 1.0][:5]
        if worst:
            listed = ", ".join(f"{row.name} ({vn_percent(_availability(row))})" for row in worst)
            self.text(f"Các xã có tỷ lệ hoạt động thấp nhất: {listed}.")

        m = f.review.maintenance_total
        if m.scheduled:
            self.text(
                f"Bảo trì, kiểm tra định kỳ: đã thực hiện {vn_int(m.done)}/{vn_int(m.scheduled)} lượt theo kế hoạch "
                f"({vn_percent(m.done / m.scheduled)}), trong đó {vn_int(m.done_on_time)} lượt đúng hạn; "
                f"{vn_int(m.open_overdue)} lượt quá hạn chưa thực hiện."
            )
        else:
            self.text("Trong kỳ chưa có lịch bảo trì, kiểm tra định kỳ nào đến hạn.")

        first = "Huyện, thành phố" if f.is_province else "Xã, phường, thị trấn"
        rows_source = f.uptime_by_district.rows if f.is_province else f.uptime_by_commune.rows
        label_uptime = self.annex(
            Table(
                "uptime",
                f"Tỷ lệ hoạt động theo {'huyện, thành phố' if f.is_province else 'xã, phường, thị trấn'}",
                _uptime_columns(first),
                [_uptime_line(row) for row in rows_source],
                _uptime_line(f.uptime_by_district.total, TOTAL),
                note=METHOD_VI,
            )
        )
        label_kind = self.annex(
            Table(
                "uptime_kind",
                "Tỷ lệ hoạt động theo loại thiết bị",
                _uptime_columns("Loại thiết bị"),
                [_uptime_line(row, kind_label(row.key)) for row in f.uptime_by_kind.rows],
                _uptime_line(f.uptime_by_kind.total, TOTAL),
            )
        )
        sla_columns = [
            Column("Mã"),
            Column(first if f.is_province else "Loại thiết bị"),
            Column("Phiếu mở", "int"),
            Column("Đã khắc phục", "int"),
            Column("Mở lại", "int"),
            Column("Quá hạn", "int"),
            Column("Tỷ lệ quá hạn", "percent"),
            Column("Tiếp nhận TB (giờ)", "hours"),
            Column("Khắc phục TB (giờ)", "hours"),
        ]
        sla_report = f.sla_by_district if f.is_province else f.sla_by_kind

        def sla_line(key: str, name: str, g: Any) -> list[Any]:
            return [key, name, g.opened, g.resolved, g.reopened, g.breached, g.breach_rate, g.mtta_s, g.mttr_s]

        label_sla = self.annex(
            Table(
                "sla",
                "Phiếu sửa chữa và thời gian xử lý",
                sla_columns,
                [
                    sla_line(row.key, row.name if f.is_province else kind_label(row.key), row.figures)
                    for row in sla_report.rows
                ],
                sla_line("", TOTAL, sla_report.total.figures),
            )
        )
        label_worst = self.annex(
            Table(
                "worst_communes",
                "Các xã có tỷ lệ hoạt động thấp nhất",
                _uptime_columns("Xã, phường, thị trấn"),
                [_uptime_line(row) for row in f.worst_communes],
            )
        )
        maintenance_rows = [
            [row.key, row.name, row.scheduled, row.done, row.done_on_time, row.open_overdue]
            for row in f.review.maintenance
        ]
        label_maintenance = self.annex(
            Table(
                "maintenance",
                "Bảo trì, kiểm tra định kỳ theo kế hoạch",
                [
                    Column("Mã"),
                    Column("Huyện, thành phố"),
                    Column("Theo kế hoạch", "int"),
                    Column("Đã thực hiện", "int"),
                    Column("Đúng hạn", "int"),
                    Column("Quá hạn chưa thực hiện", "int"),
                ],
                maintenance_rows,
                ["", TOTAL, m.scheduled, m.done, m.done_on_time, m.open_overdue],
            )
        )
        self.text(f"Chi tiết tại {label_uptime}, {label_kind}, {label_sla}, {label_worst} và {label_maintenance}.")

    # --- I.4 ---
    def bulletin_boards(self) -> None:
        f = self.f
        self.subheading("4. Bảng tin điện tử công cộng")
        boards = f.devices_by_kind.get(DeviceKind.BULLETIN_BOARD.value, 0)
        if not boards:
            self.text(f"{_upper_first(self.where)} chưa có bảng tin điện tử công cộng được đưa vào giám sát.")
            self.to_write("kế hoạch đầu tư bảng tin điện tử công cộng.")
            return
        row = f.kind_row(DeviceKind.BULLETIN_BOARD.value)
        sla = next((r.figures for r in f.sla_by_kind.rows if r.key == DeviceKind.BULLETIN_BOARD.value), None)
        communes = sum(
            1
            for commune in f.review.communes
            if any(d.kind == DeviceKind.BULLETIN_BOARD.value for d in commune.devices)
        )
        sentence = (
            f"{_upper_first(self.where)} có {vn_int(boards)} bảng tin điện tử công cộng tại {vn_int(communes)} xã, "
            f"phường, thị trấn; tỷ lệ hoạt động đạt {vn_percent(_availability(row))}"
        )
        if row is not None:
            sentence += f", {vn_int(row.figures.outages.count)} lần mất kết nối"
        if sla is not None:
            sentence += f"; {vn_int(sla.opened)} phiếu sửa chữa, đã khắc phục {vn_int(sla.resolved)}"
        board_causes = {FaultCode.SCREEN_OFF.value, FaultCode.CONTENT_STALE.value}
        causes = [line for line in f.incidents if line.kind in board_causes and line.tickets]
        if causes:
            sentence += " (" + ", ".join(f"{_cause_name(c.kind).lower()}: {vn_int(c.tickets)}" for c in causes) + ")"
        self.text(sentence + ".")
        self.to_write("việc cập nhật nội dung, số tin, bài đăng trên bảng tin điện tử.")

    # --- I.5 ---
    def training(self) -> None:
        f = self.f
        self.subheading("5. Đào tạo, bồi dưỡng nghiệp vụ")
        year, plan = f.training_year, f.training_plan
        if year.sessions:
            self.text(
                f"Trong năm đã tổ chức {vn_int(year.sessions)} lớp, buổi tập huấn ({vn_decimal(year.hours, 1)} giờ) "
                f"cho "
                f"{vn_int(year.attendees)} lượt người; {vn_int(year.trained)}/{vn_int(year.communes)} xã, phường, thị "
                f"trấn ({vn_percent(year.share)}) có cán bộ thông tin cơ sở được tập huấn trong năm."
            )
        else:
            self.text("Trong năm chưa tổ chức lớp tập huấn nào cho cán bộ thông tin cơ sở.")
        self.text(
            f"Lũy kế từ năm {f.plan_first_year}: {vn_int(plan.trained)}/{vn_int(plan.communes)} xã, phường, thị trấn "
            f"({vn_percent(plan.share)}) có cán bộ thông tin cơ sở được đào tạo, bồi dưỡng "
            f"({_met(plan.share, 1.0)} 100% cán bộ thông tin cơ sở được bồi dưỡng)."
        )

    # --- I.6 ---
    def review(self) -> None:
        f, r = self.f, self.f.review
        next_year = f.period.year + 1
        self.subheading(f"6. Rà soát hiện trạng hệ thống và cơ sở xây dựng dự toán năm {next_year}")
        devices = sum(len(commune.devices) for commune in r.communes)
        flagged = r.flagged_devices
        by_reason = {reason: sum(1 for d in flagged if reason in d.reasons) for reason in ReplaceReason}
        policy = r.policy
        self.text(
            f"Kết quả rà soát {vn_int(devices)} thiết bị: {vn_int(len(flagged))} thiết bị đề nghị thay thế, trong đó "
            f"{vn_int(by_reason[ReplaceReason.AGE])} thiết bị sử dụng trên {policy.replace_after_years} năm, "
            f"{vn_int(by_reason[ReplaceReason.REPAIRS])} thiết bị phải sửa chữa trên {policy.replace_after_repairs} "
            f"lần trong năm, {vn_int(by_reason[ReplaceReason.AVAILABILITY])} thiết bị có tỷ lệ hoạt động dưới "
            f"{vn_percent(policy.replace_below_availability, 0)} (một thiết bị có thể thuộc nhiều trường hợp)."
        )
        costs = r.costs_total
        sentence = (
            f"Chi phí sửa chữa trong năm: {vn_int(costs.total_vnd)} đồng cho {vn_int(costs.tickets)} phiếu sửa chữa "
            f"(vật tư {vn_int(costs.parts_vnd)} đồng, nhân công {vn_int(costs.labour_vnd)} đồng)"
        )
        if r.parts:
            sentence += "; vật tư phải thay nhiều nhất: " + ", ".join(
                f"{part.name} ({vn_int(part.count)})" for part in r.parts[:3]
            )
        self.text(sentence + ".")
        lines = "; ".join(
            f"{line.label_vi.lower()} {vn_int(line.amount_vnd)} đồng" for line in r.estimate if line.amount_vnd
        )
        self.text(
            f"Dự kiến kinh phí bảo trì, sửa chữa, thay thế năm {next_year}: {vn_int(r.estimate_total_vnd)} đồng"
            + (f", gồm: {lines}." if lines else ".")
        )
        cost_columns = [
            Column("Mã"),
            Column("Tên"),
            Column("Lượt sửa chữa", "int"),
            Column("Vật tư (đồng)", "vnd"),
            Column("Nhân công (đồng)", "vnd"),
            Column("Tổng (đồng)", "vnd"),
        ]

        def cost_line(row: Any, name: str | None = None) -> list[Any]:
            return [row.key, name or row.name, row.tickets, row.parts_vnd, row.labour_vnd, row.total_vnd]

        label_costs = self.annex(
            Table(
                "costs",
                "Chi phí sửa chữa theo đơn vị và loại thiết bị",
                cost_columns,
                [cost_line(row) for row in r.costs_by_district]
                + [cost_line(row, kind_label(row.key)) for row in r.costs_by_kind],
                cost_line(r.costs_total, TOTAL),
                note="Các dòng theo đơn vị và theo loại thiết bị là hai cách chia của cùng một tổng.",
            )
        )
        label_parts = self.annex(
            Table(
                "parts",
                "Vật tư thay thế nhiều nhất",
                [Column("Vật tư"), Column("Số lần thay", "int")],
                [[part.name, part.count] for part in r.parts],
            )
        )
        label_flagged = self.annex(
            Table(
                "flagged",
                "Thiết bị đề nghị thay thế",
                [
                    Column("Mã thiết bị"),
                    Column("Tên"),
                    Column("Loại"),
                    Column("Xã"),
                    Column("Ngày lắp đặt", "date"),
                    Column("Số năm sử dụng", "number"),
                    Column("Tỷ lệ hoạt động", "percent"),
                    Column("Lượt sửa chữa", "int"),
                    Column("Chi phí sửa chữa (đồng)", "vnd"),
                    Column("Lý do"),
                ],
                [
                    [
                        d.code,
                        d.name,
                        kind_label(d.kind),
                        d.commune_code,
                        d.installed_on,
                        d.age_years,
                        d.availability,
                        d.repairs,
                        d.cost_vnd,
                        "; ".join(reason.label_vi for reason in d.reasons),
                    ]
                    for d in flagged
                ],
            )
        )
        label_estimate = self.annex(
            Table(
                "estimate",
                f"Dự kiến kinh phí năm {next_year}",
                [
                    Column("Nội dung"),
                    Column("Số lượng", "int"),
                    Column("Đơn giá (đồng)", "vnd"),
                    Column("Thành tiền (đồng)", "vnd"),
                ],
                [[line.label_vi, line.quantity, line.unit_vnd, line.amount_vnd] for line in r.estimate],
                [TOTAL, None, None, r.estimate_total_vnd],
                note="Đơn giá theo tệp cấu hình đơn giá của đơn vị; số lượt sửa chữa dự kiến theo tỷ lệ "
                "của năm báo cáo.",
            )
        )
        self.text(f"Chi tiết tại {label_costs}, {label_parts}, {label_flagged} và {label_estimate}.")

    def training_table(self) -> None:
        f = self.f
        if not f.is_province:
            return
        self.annex(
            Table(
                "training",
                "Đào tạo, bồi dưỡng cán bộ thông tin cơ sở",
                [Column("Nội dung"), Column("Trong năm", "number"), Column(f"Lũy kế từ {f.plan_first_year}", "number")],
                [
                    ["Số lớp, buổi tập huấn", f.training_year.sessions, f.training_plan.sessions],
                    ["Số giờ", f.training_year.hours, f.training_plan.hours],
                    ["Lượt người tham dự", f.training_year.attendees, f.training_plan.attendees],
                    ["Số xã có cán bộ được tập huấn", f.training_year.trained, f.training_plan.trained],
                ],
            )
        )

    def difficulties_and_proposals(self) -> None:
        f, r = self.f, self.f.review
        self.heading("II. KHÓ KHĂN, VƯỚNG MẮC")
        hints = []
        worst = [row for row in f.worst_communes if (_availability(row) or 1.0) < 0.95]
        if worst:
            hints.append(
                f"{vn_int(len(worst))} xã có tỷ lệ hoạt động dưới 95%, chủ yếu do mất kết nối và mất điện ở vùng "
                "sâu, vùng xa."
            )
        if f.coverage.legacy_standing:
            hints.append(f"{vn_int(f.coverage.legacy_standing)} xã còn hệ thống truyền thanh cũ xuống cấp.")
        for hint in hints:
            self.text(f"- {hint}")
        self.to_write("khó khăn, vướng mắc trong tổ chức thực hiện.")
        self.heading("III. ĐỀ XUẤT, KIẾN NGHỊ")
        self.text(
            f"- Bố trí kinh phí {vn_int(r.estimate_total_vnd)} đồng cho bảo trì, sửa chữa, thay thế thiết bị năm "
            f"{f.period.year + 1}, trong đó thay thế {vn_int(len(r.flagged_devices))} thiết bị theo kết quả rà soát."
        )
        remaining = f.coverage.communes - f.coverage.ip_based
        if remaining > 0:
            self.text(
                f"- Đầu tư đài truyền thanh ứng dụng công nghệ thông tin - viễn thông cho {vn_int(remaining)} xã còn "
                "lại để đạt mục tiêu năm 2030."
            )
        self.to_write("đề xuất, kiến nghị khác.")

    def build(self) -> list[Block]:
        f = self.f
        self.text(
            f"Thực hiện Kế hoạch của Ủy ban nhân dân tỉnh về triển khai Đề án nâng cao hiệu quả hoạt động thông tin "
            f"cơ sở dựa trên ứng dụng công nghệ thông tin, báo cáo kết quả thực hiện năm {f.period.year} "
            f"{self.scope_phrase} (số liệu từ ngày {format_date(f.period.first)} đến ngày "
            f"{format_date(f.period.last)}) như sau:"
        )
        self.submissions()
        self.heading("I. KẾT QUẢ THỰC HIỆN")
        self.dissemination()
        self.radio_systems()
        self.operation()
        self.bulletin_boards()
        self.training()
        self.review()
        self.training_table()
        self.difficulties_and_proposals()
        if f.is_province:
            self.to_write("đánh giá chung, nhiệm vụ trọng tâm năm sau.")
        return self.blocks


def annual_document(figures: AnnualFigures, settings: Settings) -> AnnualDocument:
    """The report of `figures` as a document, headed and signed as `settings` say for a district or the province."""
    builder = _Builder(figures, settings)
    blocks = builder.build()
    made_on = local_date(figures.made_at)
    if figures.is_province:
        parent, body = settings.report_province_parent, settings.report_province_body
        symbol, place, signer = settings.report_province_symbol, settings.report_place, settings.report_province_signer
        recipients = list(settings.report_province_recipients)
        scope_name = "Toàn tỉnh"
    else:
        name = figures.district_name or ""
        parent = f"UBND {name.upper()}"
        body, symbol = settings.report_district_body, settings.report_district_symbol
        place, signer = _short_place(name), settings.report_district_signer
        recipients = list(settings.report_district_recipients)
        scope_name = name
    closing = (
        f"Trên đây là báo cáo kết quả thực hiện Đề án nâng cao hiệu quả hoạt động thông tin cơ sở dựa trên ứng "
        f"dụng công nghệ thông tin năm {figures.period.year} {builder.scope_phrase}./."
    )
    return AnnualDocument(
        year=figures.period.year,
        parent_body=parent,
        body=body,
        number=f"Số:        /BC-{symbol}",
        place_date=date_line(place, made_on),
        title="BÁO CÁO",
        subject=SUBJECT.format(year=figures.period.year),
        blocks=blocks,
        closing=closing,
        signer=signer,
        recipients=recipients,
        appendix=builder.appendix,
        scope_name=scope_name,
        period_text=f"{format_date(figures.period.first)} – {format_date(figures.period.last)}",
    )


__all__ = [
    "AnnualDocument",
    "Block",
    "Column",
    "Paragraph",
    "Table",
    "annual_document",
    "date_line",
    "vn_decimal",
    "vn_int",
    "vn_percent",
]
