"""Reading the register's CSV shape (care_homes.csv) without a database."""

from datetime import date

from services.adoption.reference import DATA
from services.adoption.sitecsv import parse_sites
from services.adoption.spreadsheet import Table, read_table


def test_the_shipped_homes_all_parse():
    table = read_table((DATA / "care_homes.csv").read_bytes(), "csv", max_rows=1000)
    parsed, refused = parse_sites(table)
    assert refused == [] and len(parsed) == 728
    first = parsed[0][1]
    assert (first.site_id, first.name, first.icb_code, first.beds, first.nursing,
            first.opened_on) == ("1-5868490225", "27 Little Week", "QJK", 2, False,
                                 date(2018, 10, 23))
    assert sum(1 for _, s in parsed if s.nursing) == 160


def test_bad_rows_name_the_column_of_the_file():
    header = ["location_id", "name", "icb_ods_code", "number_of_beds", "care_home_with_nursing",
              "registration_date"]
    rows = [(2, dict(zip(header, ["1-1", "A", "QJK", "many", "Y", "2020-01-01"], strict=True))),
            (3, dict(zip(header, ["bad id", "B", "QJK", "3", "N", ""], strict=True))),
            (4, dict(zip(header, ["1-3", "C", "QJK", "3", "maybe", ""], strict=True))),
            (5, dict(zip(header, ["1-4", "", "QJK", "3", "N", ""], strict=True)))]
    parsed, refused = parse_sites(Table(header, rows))
    assert parsed == []
    assert [(r.row, r.field) for r in refused] == [
        (2, "number_of_beds"), (3, "location_id"), (4, "care_home_with_nursing"), (5, "name")]
    assert refused[0].reason.startswith("number_of_beds: Input should be a valid integer")
