"""Pakistan's provinces, districts and tehsils, regional names and collection places: the
ingredients of the synthetic registry (population figures are rough 2023 census millions)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NameSet:
    """Given names and family names common in one region."""

    male: tuple[str, ...]
    female: tuple[str, ...]
    family: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class District:
    """A district, the four CNIC digits that follow its province digit, and its tehsils."""

    name: str
    code: str
    population: float
    tehsils: tuple[str, ...]
    names: str = ""


@dataclass(frozen=True, slots=True)
class Province:
    """A province (or area) with its CNIC province digit and its districts."""

    name: str
    cnic_code: int
    abbreviation: str
    names: str
    districts: tuple[District, ...]


def _n(*names: str) -> tuple[str, ...]:
    return names


# Data tables, laid out by hand for reading.
# fmt: off
_PUNJABI_MALE = _n(
    "Muhammad Aslam", "Muhammad Akram", "Muhammad Ashraf", "Muhammad Arshad", "Muhammad Iqbal",
    "Muhammad Nawaz", "Muhammad Riaz", "Muhammad Shafiq", "Muhammad Rafiq", "Muhammad Tariq",
    "Muhammad Imran", "Muhammad Asif", "Muhammad Usman", "Muhammad Bilal", "Allah Ditta",
    "Allah Rakha", "Ghulam Rasool", "Ghulam Mustafa", "Ghulam Abbas", "Ghulam Murtaza",
    "Manzoor Ahmad", "Mushtaq Ahmad", "Bashir Ahmad", "Nazir Ahmad", "Zafar Iqbal",
    "Shahid Mehmood", "Khalid Mehmood", "Abdul Ghafoor", "Abdul Sattar", "Abdul Rehman",
    "Abdul Hameed", "Fazal Din", "Noor Din", "Muhammad Sharif", "Rasheed Ahmad", "Javed Iqbal",
    "Naveed Anjum", "Ali Raza", "Ali Hassan", "Waqas Ahmad", "Zeeshan Ali", "Kashif Ali",
    "Asghar Ali", "Sajid Hussain", "Mumtaz Hussain", "Ijaz Ahmad", "Liaqat Ali", "Sarfraz Ahmad",
)
_PUNJABI_FEMALE = _n(
    "Nasreen", "Shazia", "Rukhsana", "Parveen", "Shamim", "Naseem", "Samina", "Farzana",
    "Bushra", "Kausar", "Razia", "Sughran", "Hajran", "Zubaida", "Rashida", "Naseem Akhtar",
    "Nazia", "Asia", "Saima", "Rubina", "Tahira", "Kalsoom", "Sakina", "Zainab", "Fatima",
    "Ayesha", "Amina", "Iqra", "Maryam", "Sadia", "Sobia", "Irshad", "Mukhtaran",
    "Allah Rakhi", "Jannat", "Shahnaz", "Yasmeen", "Musarrat", "Tasleem", "Nusrat",
)
_PUNJABI_FAMILY = _n(
    "Ahmad", "Ali", "Hussain", "Iqbal", "Akhtar", "Malik", "Chaudhry", "Butt", "Awan", "Gondal",
    "Cheema", "Warraich", "Bajwa", "Virk", "Sandhu", "Gill", "Arain", "Rajput", "Jutt", "Gujjar",
    "Qureshi", "Sheikh", "Ansari", "Mughal", "Bhatti", "Khokhar", "Niazi", "Tarar", "Janjua",
    "Kharal", "Sial", "Dogar", "Joiya", "Wattoo", "Ranjha",
)

NAME_SETS: dict[str, NameSet] = {
    "punjabi": NameSet(_PUNJABI_MALE, _PUNJABI_FEMALE, _PUNJABI_FAMILY),
    "potohari": NameSet(
        _PUNJABI_MALE + _n("Raja Khalid", "Raja Tariq", "Muhammad Younas", "Sabir Hussain"),
        _PUNJABI_FEMALE + _n("Shakeela", "Nighat", "Parveen Akhtar"),
        _n("Abbasi", "Satti", "Raja", "Awan", "Gondal", "Kayani", "Janjua", "Dhanyal", "Qureshi",
           "Malik", "Bhatti", "Mughal", "Khan", "Chaudhry", "Minhas"),
    ),
    "seraiki": NameSet(
        _n("Allah Bakhsh", "Khuda Bakhsh", "Ghulam Haider", "Ghulam Fareed", "Muhammad Ramzan",
           "Muhammad Yaqoob", "Muhammad Saleem", "Rab Nawaz", "Mehboob Ali", "Manzoor Hussain",
           "Nazar Muhammad", "Sher Muhammad", "Ahmad Bakhsh", "Faiz Bakhsh", "Karam Dad",
           "Ameer Bakhsh", "Dost Muhammad", "Shabbir Ahmad", "Jamshed Iqbal", "Zulfiqar Ali",
           "Ghulam Qadir", "Abdul Majeed", "Muhammad Afzal", "Ghulam Yaseen"),
        _n("Mai Jannat", "Allah Wasai", "Ghulam Fatima", "Mumtaz Mai", "Naseem Mai",
           "Sakina Mai", "Bashiran", "Rasoolan", "Sughran Bibi", "Hameeda", "Nazeeran",
           "Parveen Akhtar", "Kaneez Fatima", "Khursheed Mai", "Razia Mai", "Safia", "Zohra",
           "Sajida", "Shabana", "Noor Bibi", "Hakim Mai", "Allah Jawai"),
        _n("Khosa", "Leghari", "Gurmani", "Mazari", "Dreshak", "Lashari", "Jatoi", "Laar",
           "Kanju", "Bosan", "Gardezi", "Qureshi", "Baloch", "Jakhar", "Langah", "Hiraj", "Sial",
           "Thaheem", "Sargana", "Chandia", "Buzdar", "Gopang"),
    ),
    "sindhi": NameSet(
        _n("Ali Nawaz", "Ghulam Qadir", "Mumtaz Ali", "Allah Bachayo", "Allah Dino",
           "Khan Muhammad", "Ali Gohar", "Ghulam Hyder", "Ghulam Sarwar", "Gul Hassan",
           "Muhammad Hassan", "Nabi Bux", "Ali Murad", "Sikandar Ali", "Abdul Razzaq",
           "Imdad Ali", "Niaz Hussain", "Shah Nawaz", "Mir Muhammad", "Bashir Ahmed",
           "Nisar Ahmed", "Aijaz Ali", "Zulfiqar Ali", "Abdul Majeed", "Rahim Bux", "Qadir Bux",
           "Hakim Ali", "Wali Muhammad", "Ghulam Nabi", "Sain Bux", "Ghulam Rasool"),
        _n("Hawa", "Marvi", "Sassui", "Zubaida", "Naz Bibi", "Sakina", "Mumtaz", "Hameeda",
           "Saeeda", "Zarina", "Nazeeran", "Pathani", "Sahiba", "Shahida", "Rasheeda", "Kulsoom",
           "Amna", "Fatima", "Noor Jehan", "Jannat", "Bakhtawar", "Sughra", "Mehrunisa",
           "Zeenat", "Naseem", "Hajani", "Bhagul"),
        _n("Soomro", "Memon", "Shah", "Jatoi", "Bhutto", "Chandio", "Brohi", "Laghari",
           "Junejo", "Abro", "Mangi", "Khoso", "Solangi", "Mallah", "Panhwar", "Jamali", "Unar",
           "Kalhoro", "Dahri", "Rajper", "Samejo", "Channa", "Shaikh", "Khaskheli", "Mirbahar",
           "Magsi", "Bughio", "Lashari", "Qazi", "Narejo", "Jakhrani"),
    ),
    "thari": NameSet(
        _n("Ramesh Kumar", "Mohan Lal", "Kanji", "Bhagchand", "Dileep Kumar", "Arjun Das",
           "Hemraj", "Khetoo Mal", "Lakhmi Chand", "Ali Nawaz", "Allah Dino", "Ghulam Hyder",
           "Arbab Khan", "Muhammad Hassan", "Sain Bux", "Jaffar Khan"),
        _n("Lakshmi", "Kavita", "Sita", "Meera", "Parvati", "Poonam", "Radha", "Kesar",
           "Champa", "Hawa", "Sakina", "Jannat", "Zubaida", "Sahiba", "Mumtaz"),
        _n("Meghwar", "Kolhi", "Bheel", "Sodho", "Maheshwari", "Samejo", "Rahimoon", "Nohri",
           "Halepoto", "Junejo", "Arbab", "Sameja", "Khaskheli"),
    ),
    "karachi": NameSet(
        _n("Syed Ahmed", "Muhammad Ahmed", "Faisal Ahmed", "Kamran Ali", "Salman Khan",
           "Adnan Ahmed", "Muhammad Imran", "Rehan Ali", "Asif Ali", "Arif Hussain",
           "Shahid Ali", "Zubair Ahmed", "Owais Ahmed", "Rizwan Ahmed", "Tahir Hussain",
           "Nadeem Akhtar", "Aamir Khan", "Junaid Ahmed", "Anwar Ali", "Farooq Ahmed",
           "Saleem Akhtar", "Naeem Ahmed", "Gul Zaman", "Sher Ali", "Muhammad Hanif"),
        _n("Farhana", "Rehana", "Shahnaz", "Nighat", "Naheed", "Shabnam", "Tabassum", "Sana",
           "Hina", "Sadaf", "Uzma", "Erum", "Asma", "Saba", "Rabia", "Nusrat", "Yasmin",
           "Ghazala", "Shagufta", "Anjum", "Kulsoom", "Zarina", "Gul Bibi"),
        _n("Siddiqui", "Qureshi", "Ansari", "Hashmi", "Zaidi", "Rizvi", "Naqvi", "Jafri",
           "Usmani", "Farooqui", "Baig", "Mirza", "Khan", "Memon", "Shaikh", "Abbasi", "Hussain",
           "Ahmed", "Akhtar", "Baloch", "Afridi", "Yousafzai", "Soomro"),
    ),
    "pashtun": NameSet(
        _n("Gul Zaman", "Sher Ali", "Zar Khan", "Said Rahman", "Fazal Rabi", "Fazal Hadi",
           "Gul Rahman", "Bakht Zada", "Sher Zaman", "Noor Rahman", "Abdul Wahab",
           "Abdul Qayyum", "Amir Nawaz", "Shah Faisal", "Jehangir Khan", "Zahir Shah",
           "Muhammad Ayaz", "Sajjad Ali", "Niaz Muhammad", "Taj Muhammad", "Hazrat Ali",
           "Wali Khan", "Rahim Gul", "Sultan Muhammad", "Ihsanullah", "Inamullah", "Hidayatullah",
           "Rahmatullah", "Saifullah", "Habibullah", "Naseebullah", "Zahid Khan",
           "Muhammad Ismail", "Gul Muhammad", "Mir Afzal", "Shah Wali"),
        _n("Gul Bibi", "Zarmina", "Palwasha", "Bakht Zarina", "Shah Bibi", "Zar Bibi", "Gul Bano",
           "Nazo", "Sabira", "Bibi Hajra", "Rahima", "Zubaida", "Shaheen", "Farida", "Rozina",
           "Gulalai", "Nasiba", "Mehnaz", "Shagufta", "Hasina", "Nasreen", "Saira", "Jamila",
           "Khalida", "Begum Jan", "Zahida", "Zeba", "Gul Nisa", "Bakht Bibi"),
        _n("Khan", "Afridi", "Yousafzai", "Khattak", "Mohmand", "Shinwari", "Orakzai", "Bangash",
           "Durrani", "Marwat", "Swati", "Gandapur", "Safi", "Khalil", "Mohammadzai", "Wardag",
           "Bhittani", "Daudzai", "Utmankhel", "Tarkani", "Akhunzada", "Kakakhel"),
    ),
    "tribal": NameSet(
        _n("Gul Zaman", "Sher Ali", "Zar Khan", "Said Rahman", "Noor Rahman", "Malik Jan",
           "Haji Gul", "Khan Zada", "Shah Zaman", "Bakht Jamal", "Rahim Gul", "Gul Marjan",
           "Naseebullah", "Habibullah", "Ihsanullah", "Zarwali Khan", "Sher Khan", "Momin Khan",
           "Taj Muhammad", "Shahid Khan", "Akbar Khan", "Hayat Khan"),
        _n("Gul Bibi", "Zarmina", "Bakht Bibi", "Shah Bibi", "Zar Bibi", "Gul Bano", "Nazo",
           "Rahima", "Gulalai", "Nasiba", "Begum Jan", "Gul Nisa", "Malika", "Sheerin",
           "Bibi Amina", "Gul Pari"),
        _n("Afridi", "Shinwari", "Mohmand", "Wazir", "Mehsud", "Dawar", "Turi", "Bangash",
           "Orakzai", "Mamund", "Salarzai", "Utmankhel", "Tarkani", "Safi", "Zakhakhel",
           "Kukikhel", "Malikdinkhel", "Bhittani"),
    ),
    "hindko": NameSet(
        _PUNJABI_MALE + _n("Sardar Ali", "Muhammad Shafi", "Gul Khan", "Abdul Qayyum"),
        _PUNJABI_FEMALE + _n("Gul Bibi", "Shaheen", "Nasim Akhtar"),
        _n("Abbasi", "Jadoon", "Tanoli", "Swati", "Awan", "Qureshi", "Gujjar", "Mughal", "Karlal",
           "Syed", "Tarin", "Dhund", "Khan", "Mashwani"),
    ),
    "baloch": NameSet(
        _n("Dad Muhammad", "Mir Hassan", "Karim Bakhsh", "Dost Muhammad", "Mir Jan",
           "Mehrab Khan", "Shah Mureed", "Gulzar Ahmed", "Abdul Ghani", "Murad Bakhsh",
           "Khuda Dad", "Wahid Bakhsh", "Naseer Ahmed", "Nawab Khan", "Sardar Khan",
           "Allah Bakhsh", "Noor Ahmed", "Jan Muhammad", "Pir Bakhsh", "Dilmurad", "Mir Dost",
           "Bashir Ahmed", "Zahoor Ahmed", "Abdul Hakeem", "Lal Bakhsh"),
        _n("Hani", "Mahnaz", "Gul Bano", "Sharifa", "Mah Gul", "Bibi Sabira", "Gul Naz",
           "Mehrnaz", "Bibi Jan", "Shahi Bibi", "Gul Khatoon", "Nazbano", "Hawa", "Sakina",
           "Zareena", "Baanuk", "Sammi", "Mahal", "Nazuk", "Bibi Amina"),
        _n("Baloch", "Bugti", "Marri", "Mengal", "Rind", "Raisani", "Zehri", "Jamali", "Magsi",
           "Lehri", "Bizenjo", "Jamaldini", "Langove", "Hasni", "Gichki", "Dashti", "Buledi",
           "Shahwani", "Sumalani", "Notezai", "Badini", "Kurd", "Lango", "Mohammad Hasni"),
    ),
    "pashtun_balochistan": NameSet(
        _n("Abdul Wali", "Naseebullah", "Habibullah", "Abdul Samad", "Gul Muhammad",
           "Taj Muhammad", "Abdul Bari", "Haji Lal", "Mir Ahmed", "Juma Khan", "Sher Ali",
           "Abdul Raziq", "Nazar Muhammad", "Dur Muhammad", "Sardar Muhammad", "Abdul Hadi",
           "Rozi Khan", "Hayatullah"),
        _n("Gul Bibi", "Bibi Hajra", "Zarmina", "Shah Bibi", "Bakht Bibi", "Gul Bano",
           "Rahima", "Nasiba", "Malika", "Begum Jan", "Sabira", "Noor Bibi", "Zar Bibi",
           "Gul Nisa"),
        _n("Kakar", "Achakzai", "Tareen", "Mandokhel", "Kasi", "Panezai", "Sherani", "Luni",
           "Nasar", "Babar", "Musakhel", "Jogezai", "Barech", "Noorzai", "Alizai"),
    ),
    "gilgiti": NameSet(
        _n("Sher Baz", "Ali Madad", "Shah Hussain", "Karim Khan", "Amanullah", "Sultan Ali",
           "Zulfiqar Ali", "Ghulam Abbas", "Mehdi Hassan", "Raja Hussain", "Akbar Hussain",
           "Muhammad Baqir", "Sajjad Hussain", "Nawaz Khan", "Sher Ali", "Nadir Shah",
           "Daulat Khan", "Ghulam Mehdi", "Didar Ali", "Qurban Ali"),
        _n("Gul Bahar", "Shireen", "Noor Bano", "Zohra", "Bilqees", "Kaneez", "Fiza", "Sakina",
           "Rehmat Bibi", "Gul Pari", "Nargis", "Shaista", "Parveen", "Saleema", "Masooma",
           "Batool", "Zainab", "Shahida"),
        _n("Baig", "Khan", "Shah", "Hussain", "Hunzai", "Nagri", "Shigri", "Yasini", "Raja",
           "Mir", "Balti", "Kharmangi", "Astori", "Chilasi", "Ali"),
    ),
}


def _d(name: str, code: str, population: float, *tehsils: str, names: str = "") -> District:
    return District(name, code, population, tehsils, names)


PROVINCES: tuple[Province, ...] = (
    Province("Khyber Pakhtunkhwa", 1, "KP", "pashtun", (
        _d("Peshawar", "7301", 4.76, "Peshawar City", "Shah Alam", "Mathra", "Badaber",
           "Chamkani", "Hassan Khel", "Peshtakhara"),
        _d("Mardan", "6101", 2.74, "Mardan", "Takht Bhai", "Katlang", "Garhi Kapura", "Rustam"),
        _d("Swat", "5602", 2.69, "Babuzai", "Matta", "Kabal", "Barikot", "Khwazakhela",
           "Charbagh", "Bahrain"),
        _d("Swabi", "6202", 1.89, "Swabi", "Lahor", "Razar", "Topi"),
        _d("Charsadda", "7101", 1.84, "Charsadda", "Shabqadar", "Tangi"),
        _d("Dera Ismail Khan", "2101", 1.80, "Dera Ismail Khan", "Kulachi", "Paharpur",
           "Daraban", "Paroa"),
        _d("Mansehra", "3202", 1.80, "Mansehra", "Balakot", "Oghi", "Baffa Pakhal",
           names="hindko"),
        _d("Nowshera", "7201", 1.74, "Nowshera", "Pabbi", "Jehangira"),
        _d("Lower Dir", "5401", 1.65, "Timergara", "Adenzai", "Balambat", "Lal Qila",
           "Samarbagh", "Munda"),
        _d("Abbottabad", "3101", 1.42, "Abbottabad", "Havelian", "Lora", names="hindko"),
        _d("Bannu", "1101", 1.36, "Bannu", "Domel", "Baka Khel", "Kakki"),
        _d("Kohat", "4301", 1.23, "Kohat", "Lachi", "Gumbat", "Dara Adam Khel"),
        _d("Haripur", "3302", 1.17, "Haripur", "Ghazi", "Khanpur", names="hindko"),
        _d("Upper Dir", "5402", 1.08, "Dir", "Wari", "Barawal", "Kalkot"),
        _d("Buner", "5101", 1.02, "Daggar", "Gagra", "Khudu Khel", "Chagharzai", "Gadezai",
           "Totalai"),
        _d("Lakki Marwat", "1201", 1.00, "Lakki Marwat", "Serai Naurang", "Bettani"),
        _d("Shangla", "5701", 0.89, "Alpuri", "Puran", "Bisham", "Chakesar", "Martung"),
        _d("Malakand", "5301", 0.83, "Sam Ranizai", "Swat Ranizai", "Thana Baizai"),
        _d("Karak", "4101", 0.80, "Karak", "Banda Daud Shah", "Takht-e-Nasrati"),
        _d("Hangu", "4201", 0.60, "Hangu", "Thall"),
        _d("Battagram", "3401", 0.55, "Battagram", "Allai", names="hindko"),
        _d("Tank", "2201", 0.44, "Tank", "Jandola"),
        _d("Lower Chitral", "5201", 0.32, "Chitral", "Drosh"),
    )),
    Province("Ex-FATA (Merged Districts)", 2, "FA", "tribal", (
        _d("Bajaur", "1101", 1.29, "Khar", "Mamund", "Salarzai", "Nawagai", "Barang",
           "Utmankhel", "Chamarkand"),
        _d("Khyber", "1301", 1.15, "Jamrud", "Landi Kotal", "Bara", "Mula Gori"),
        _d("South Waziristan", "1701", 0.89, "Wana", "Ladha", "Sararogha", "Makeen", "Birmal",
           "Toi Khulla"),
        _d("Kurram", "1401", 0.78, "Upper Kurram", "Central Kurram", "Lower Kurram"),
        _d("North Waziristan", "1601", 0.69, "Miranshah", "Mir Ali", "Razmak", "Datta Khel",
           "Spinwam", "Shewa", "Ghulam Khan"),
        _d("Mohmand", "1201", 0.55, "Upper Mohmand", "Safi", "Halimzai", "Pindiali",
           "Prang Ghar", "Ambar Utmankhel", "Yakka Ghund"),
        _d("Orakzai", "1501", 0.29, "Lower Orakzai", "Upper Orakzai", "Central Orakzai",
           "Ismailzai"),
    )),
    Province("Punjab", 3, "PB", "punjabi", (
        _d("Lahore", "5202", 13.00, "Lahore City", "Lahore Cantt", "Model Town", "Raiwind",
           "Shalimar", "Wagha"),
        _d("Faisalabad", "3100", 9.08, "Faisalabad City", "Faisalabad Saddar", "Chak Jhumra",
           "Jaranwala", "Samundri", "Tandlianwala"),
        _d("Rawalpindi", "7405", 5.70, "Rawalpindi", "Gujar Khan", "Kahuta", "Kallar Syedan",
           "Kotli Sattian", "Taxila", names="potohari"),
        _d("Gujranwala", "4101", 5.90, "Gujranwala City", "Gujranwala Saddar", "Kamoke",
           "Nowshera Virkan", "Wazirabad"),
        _d("Rahim Yar Khan", "1303", 5.56, "Rahim Yar Khan", "Khanpur", "Liaquatpur",
           "Sadiqabad", names="seraiki"),
        _d("Multan", "6302", 5.36, "Multan City", "Multan Saddar", "Shujabad",
           "Jalalpur Pirwala", names="seraiki"),
        _d("Muzaffargarh", "2304", 5.00, "Muzaffargarh", "Alipur", "Jatoi", "Kot Addu",
           names="seraiki"),
        _d("Sialkot", "4603", 4.50, "Sialkot", "Daska", "Pasrur", "Sambrial"),
        _d("Sargodha", "8403", 4.33, "Sargodha", "Bhalwal", "Kot Momin", "Sahiwal", "Shahpur",
           "Sillanwali", "Bhera"),
        _d("Bahawalpur", "1202", 4.28, "Bahawalpur City", "Bahawalpur Saddar", "Ahmadpur East",
           "Hasilpur", "Khairpur Tamewali", "Yazman", names="seraiki"),
        _d("Kasur", "5102", 4.08, "Kasur", "Chunian", "Kot Radha Kishan", "Pattoki"),
        _d("Sheikhupura", "5404", 4.05, "Sheikhupura", "Ferozewala", "Muridke", "Safdarabad",
           "Sharaqpur"),
        _d("Bahawalnagar", "1101", 3.55, "Bahawalnagar", "Chishtian", "Fort Abbas",
           "Haroonabad", "Minchinabad"),
        _d("Okara", "5302", 3.52, "Okara", "Depalpur", "Renala Khurd"),
        _d("Vehari", "6601", 3.43, "Vehari", "Burewala", "Mailsi"),
        _d("Khanewal", "6103", 3.36, "Khanewal", "Jahanian", "Kabirwala", "Mian Channu"),
        _d("Jhang", "3202", 3.06, "Jhang", "Shorkot", "Ahmadpur Sial", "Athara Hazari"),
        _d("Dera Ghazi Khan", "2102", 3.00, "Dera Ghazi Khan", "Kot Chutta", "Taunsa",
           names="seraiki"),
        _d("Gujrat", "4201", 2.90, "Gujrat", "Kharian", "Sarai Alamgir", "Jalalpur Jattan"),
        _d("Sahiwal", "6502", 2.88, "Sahiwal", "Chichawatni"),
        _d("Toba Tek Singh", "3303", 2.52, "Toba Tek Singh", "Gojra", "Kamalia", "Pir Mahal"),
        _d("Rajanpur", "2402", 2.38, "Rajanpur", "Jampur", "Rojhan", names="seraiki"),
        _d("Attock", "7101", 2.17, "Attock", "Fateh Jang", "Hasan Abdal", "Hazro", "Jand",
           "Pindi Gheb", names="potohari"),
        _d("Pakpattan", "6402", 2.14, "Pakpattan", "Arifwala"),
        _d("Layyah", "2203", 2.10, "Layyah", "Karor Lal Esan", "Chaubara", names="seraiki"),
        _d("Bhakkar", "8101", 1.96, "Bhakkar", "Darya Khan", "Kaloorkot", "Mankera",
           names="seraiki"),
        _d("Narowal", "4501", 1.95, "Narowal", "Shakargarh", "Zafarwal"),
        _d("Lodhran", "6203", 1.93, "Lodhran", "Dunyapur", "Kahror Pacca", names="seraiki"),
        _d("Mianwali", "8302", 1.80, "Mianwali", "Isa Khel", "Piplan"),
        _d("Mandi Bahauddin", "4403", 1.80, "Mandi Bahauddin", "Malakwal", "Phalia"),
        _d("Chakwal", "7201", 1.70, "Chakwal", "Choa Saidan Shah", "Kallar Kahar", "Lawa",
           "Talagang", names="potohari"),
        _d("Nankana Sahib", "5401", 1.63, "Nankana Sahib", "Sangla Hill", "Shahkot"),
        _d("Chiniot", "3201", 1.56, "Chiniot", "Bhawana", "Lalian"),
        _d("Khushab", "8201", 1.50, "Khushab", "Noorpur Thal", "Quaidabad", "Naushera"),
        _d("Jhelum", "7301", 1.40, "Jhelum", "Dina", "Pind Dadan Khan", "Sohawa",
           names="potohari"),
        _d("Hafizabad", "4301", 1.32, "Hafizabad", "Pindi Bhattian"),
    )),
    Province("Sindh", 4, "SD", "sindhi", (
        _d("Karachi East", "2201", 3.90, "Gulshan-e-Iqbal", "Ferozabad", "Gulzar-e-Hijri",
           "Jamshed Quarters", names="karachi"),
        _d("Karachi Central", "2101", 3.82, "Gulberg", "Liaquatabad", "New Karachi",
           "North Nazimabad", "Nazimabad", names="karachi"),
        _d("Korangi", "2202", 3.13, "Korangi", "Landhi", "Model Colony", "Shah Faisal",
           names="karachi"),
        _d("Karachi West", "2401", 2.68, "Orangi", "Manghopir", "Mominabad", names="karachi"),
        _d("Khairpur", "5203", 2.60, "Khairpur", "Gambat", "Kingri", "Kot Diji", "Nara",
           "Sobho Dero", "Faiz Ganj", "Thari Mirwah"),
        _d("Malir", "2501", 2.43, "Bin Qasim", "Gadap", "Ibrahim Hyderi", "Murad Memon",
           "Shah Mureed", names="karachi"),
        _d("Hyderabad", "1303", 2.43, "Hyderabad City", "Latifabad", "Qasimabad",
           "Hyderabad Rural"),
        _d("Sanghar", "6301", 2.31, "Sanghar", "Jam Nawaz Ali", "Khipro", "Shahdadpur",
           "Sinjhoro", "Tando Adam"),
        _d("Karachi South", "2301", 2.33, "Lyari", "Saddar", "Civil Lines", "Arambagh",
           "Garden", names="karachi"),
        _d("Keamari", "2402", 2.07, "Baldia", "Harbour", "Maripur", "SITE", names="karachi"),
        _d("Badin", "1101", 1.95, "Badin", "Matli", "Shaheed Fazil Rahu", "Talhar",
           "Tando Bago"),
        _d("Shaheed Benazirabad", "6101", 1.85, "Nawabshah", "Daur", "Qazi Ahmed", "Sakrand"),
        _d("Naushahro Feroze", "6201", 1.78, "Naushahro Feroze", "Bhiria", "Kandiaro",
           "Mehrabpur", "Moro"),
        _d("Larkana", "3203", 1.78, "Larkana", "Bakrani", "Dokri", "Ratodero"),
        _d("Tharparkar", "4601", 1.78, "Mithi", "Chachro", "Diplo", "Islamkot", "Nagarparkar",
           "Dahli", "Kaloi", names="thari"),
        _d("Mirpur Khas", "4403", 1.75, "Mirpur Khas", "Digri", "Hussain Bux Mari", "Jhuddo",
           "Kot Ghulam Muhammad", "Sindhri"),
        _d("Ghotki", "5102", 1.77, "Ghotki", "Daharki", "Khangarh", "Mirpur Mathelo",
           "Ubauro"),
        _d("Dadu", "1201", 1.74, "Dadu", "Johi", "Khairpur Nathan Shah", "Mehar"),
        _d("Sukkur", "5504", 1.64, "Sukkur City", "New Sukkur", "Rohri", "Pano Aqil",
           "Saleh Pat"),
        _d("Qambar Shahdadkot", "3204", 1.51, "Qambar", "Shahdadkot", "Miro Khan", "Nasirabad",
           "Warah"),
        _d("Shikarpur", "3401", 1.39, "Shikarpur", "Garhi Yasin", "Khanpur", "Lakhi"),
        _d("Kashmore", "3102", 1.24, "Kashmore", "Kandhkot", "Tangwani"),
        _d("Jacobabad", "3101", 1.17, "Jacobabad", "Garhi Khairo", "Thul"),
        _d("Umerkot", "4501", 1.16, "Umerkot", "Kunri", "Pithoro", "Samaro", names="thari"),
        _d("Jamshoro", "1204", 1.12, "Kotri", "Manjhand", "Sehwan", "Thano Bula Khan"),
        _d("Thatta", "1401", 1.08, "Thatta", "Mirpur Sakro", "Ghorabari", "Keti Bandar"),
        _d("Tando Allahyar", "1306", 0.92, "Tando Allahyar", "Chamber", "Jhando Mari"),
        _d("Sujawal", "1402", 0.86, "Sujawal", "Jati", "Kharo Chan", "Mirpur Bathoro",
           "Shah Bandar"),
        _d("Matiari", "1305", 0.85, "Matiari", "Hala", "Saeedabad"),
        _d("Tando Muhammad Khan", "1307", 0.73, "Tando Muhammad Khan", "Bulri Shah Karim",
           "Tando Ghulam Hyder"),
    )),
    Province("Balochistan", 5, "BL", "baloch", (
        _d("Quetta", "4400", 2.60, "Quetta City", "Quetta Saddar", "Kuchlak", "Panjpai",
           names="pashtun_balochistan"),
        _d("Kech", "5101", 1.20, "Turbat", "Buleda", "Tump", "Mand", "Dasht"),
        _d("Khuzdar", "2201", 1.00, "Khuzdar", "Zehri", "Wadh", "Nal", "Karkh", "Ornach"),
        _d("Pishin", "4301", 0.84, "Pishin", "Karezat", "Barshore", "Hurramzai", "Saranan",
           names="pashtun_balochistan"),
        _d("Killa Abdullah", "4201", 0.76, "Gulistan", "Killa Abdullah", "Dobandi",
           names="pashtun_balochistan"),
        _d("Lasbela", "2401", 0.68, "Uthal", "Bela", "Lakhra", "Kanraj"),
        _d("Jaffarabad", "1101", 0.60, "Jhat Pat", "Gandakha"),
        _d("Nasirabad", "1201", 0.56, "Dera Murad Jamali", "Tamboo", "Chattar", "Baba Kot"),
        _d("Panjgur", "5301", 0.50, "Panjgur", "Gowargo", "Paroom", "Gichk"),
        _d("Chaman", "4202", 0.47, "Chaman", names="pashtun_balochistan"),
        _d("Hub", "2402", 0.45, "Hub", "Sonmiani", "Dureji", "Gadani"),
        _d("Loralai", "6201", 0.40, "Loralai", "Bori", names="pashtun_balochistan"),
        _d("Kachhi", "3201", 0.40, "Dhadar", "Bhag", "Mach", "Balanari"),
        _d("Kalat", "2101", 0.40, "Kalat", "Mangochar", "Johan"),
        _d("Zhob", "6101", 0.39, "Zhob", "Qamar Din Karez", "Ashewat", "Kashatoo",
           names="pashtun_balochistan"),
        _d("Dera Bugti", "3301", 0.35, "Dera Bugti", "Sui", "Phelawagh"),
        _d("Mastung", "2301", 0.30, "Mastung", "Dasht", "Kardigap"),
        _d("Gwadar", "5201", 0.30, "Gwadar", "Pasni", "Jiwani", "Ormara"),
        _d("Washuk", "2502", 0.30, "Washuk", "Besima", "Mashkel"),
        _d("Kharan", "2501", 0.26, "Kharan", "Tohumulk"),
        _d("Sibi", "3101", 0.22, "Sibi", "Kutmandai", "Lehri"),
        _d("Jhal Magsi", "1301", 0.18, "Jhal Magsi", "Gandawah"),
        _d("Awaran", "2601", 0.18, "Awaran", "Jhal Jhao", "Mashkai"),
    )),
    Province("Islamabad", 6, "IS", "potohari", (
        _d("Islamabad", "1101", 2.36, "Islamabad City", "Saddar", "Nilore", "Shehzad Town",
           "Secretariat", "Industrial Area"),
    )),
    Province("Gilgit-Baltistan", 7, "GB", "gilgiti", (
        _d("Gilgit", "1501", 0.33, "Gilgit", "Danyore", "Juglot"),
        _d("Skardu", "1101", 0.30, "Skardu", "Gultari", "Rondu"),
        _d("Diamer", "1401", 0.27, "Chilas", "Darel", "Tangir"),
        _d("Ghizer", "1601", 0.19, "Gupis", "Punial", "Yasin", "Ishkoman"),
        _d("Ghanche", "1201", 0.16, "Khaplu", "Mashabrum", "Daghoni"),
        _d("Astore", "1402", 0.10, "Astore", "Shounter"),
        _d("Nagar", "1702", 0.07, "Nagar-I", "Nagar-II"),
        _d("Hunza", "1701", 0.06, "Aliabad", "Gojal"),
        _d("Shigar", "1102", 0.06, "Shigar"),
        _d("Kharmang", "1103", 0.05, "Kharmang"),
    )),
)

# fmt: on

PROVINCE_CNIC_CODES: dict[str, int] = {p.name: p.cnic_code for p in PROVINCES}

# -- where a payment is collected ----------------------------------------------------------

# fmt: off
#: The programme's partner banks, paying at branches and through their agents.
BANKS: tuple[str, ...] = ("HBL", "Bank Alfalah")

BRANCHES: tuple[str, ...] = (
    "Main Bazaar", "GT Road", "Railway Road", "College Road", "Ghalla Mandi", "Committee Chowk",
    "Civil Lines", "Sadar Bazaar", "Kutchery Road", "Hospital Road", "Jinnah Road",
    "Station Road", "Circular Road", "Chowk Yadgar", "Court Road",
)

CAMPSITES: tuple[str, ...] = (
    "Govt Girls High School No. 1", "Govt Girls High School No. 2",
    "Govt Girls Primary School No. 1", "Govt Girls Higher Secondary School",
    "Govt Boys High School No. 1", "Govt Degree College for Women", "Union Council Office",
    "BISP Tehsil Office", "Community Centre", "Town Committee Hall",
    "Govt Elementary School (Girls)", "Basic Health Unit grounds",
)

RETAILERS: tuple[str, ...] = ("HBL Konnect agent", "Bank Alfalah agent")

MARKETS: tuple[str, ...] = (
    "Main Chowk", "Bus Adda", "Sabzi Mandi", "Ghalla Mandi", "Masjid Road",
    "Post Office Chowk", "Eidgah Road", "Railway Phatak", "Purana Bazaar", "Hospital Chowk",
    "Thana Road", "Anaj Mandi", "Kachehri Bazaar",
)
# fmt: on


def bank_place(bank: str, branch: str, tehsil: str) -> str:
    """`HBL, Main Bazaar Branch, Kamoke`."""
    return f"{bank}, {branch} Branch, {tehsil}"


def campsite_place(campsite: str, tehsil: str) -> str:
    """`Govt Girls High School No. 2, Kamoke`."""
    return f"{campsite}, {tehsil}"


def retailer_place(retailer: str, market: str, tehsil: str) -> str:
    """`HBL Konnect agent, Ghalla Mandi, Kamoke`."""
    return f"{retailer}, {market}, {tehsil}"
